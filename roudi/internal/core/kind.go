package core

import (
	"fmt"

	"github.com/parallax-ipc/parallax"
)

// Request/response services (docs/design/request-response.md): a service
// is two topics, one per direction, kept apart from pub/sub topics of the
// same name by their kind.

// EndpointKind is the kind of a publisher or subscriber.
type EndpointKind uint8

// Endpoint kinds (wire.EndpointTopic, ...).
const (
	KindTopic    EndpointKind = 0 // pub/sub
	KindRequest  EndpointKind = 1 // a client's request publisher, a server's request subscriber
	KindResponse EndpointKind = 2 // a server's response publisher, a client's response subscriber
	KindEvent    EndpointKind = 3 // an event service's notifier (publisher) or listener (subscriber)
)

// rpcKey names a service topic.
type rpcKey struct {
	kind EndpointKind
	name string
}

// topicOf returns the topic of kind and name, nil when it does not exist.
func (r *Router) topicOf(kind EndpointKind, name string) *topic {
	if kind == KindTopic {
		return r.topics[name]
	}
	return r.rpc[rpcKey{kind, name}]
}

// addTopic registers a new topic.
func (r *Router) addTopic(kind EndpointKind, name string, typ TypeInfo) *topic {
	t := &topic{kind: kind, name: name, typ: typ}
	if kind == KindTopic {
		r.topics[name] = t
	} else {
		r.rpc[rpcKey{kind, name}] = t
	}
	return t
}

// checkKind refuses unknown kinds, services in the shared model and
// history on a service.
func (r *Router) checkKind(kind EndpointKind, history int) error {
	switch {
	case kind == KindTopic:
		return nil
	case kind > KindEvent:
		return fmt.Errorf("%w: unknown endpoint kind %d", parallax.ErrProtocol, kind)
	case history != 0:
		return fmt.Errorf("%w: history %d on a request/response or event endpoint", parallax.ErrProtocol, history)
	}
	return nil
}

// accessSide maps an endpoint to the side of the access rules that
// governs it: calling a service is the rule's publish side (request
// publisher, response subscriber), serving it the subscribe side.
func accessSide(kind EndpointKind, publish bool) (pubSide bool, verb string) {
	switch {
	case kind == KindTopic && publish:
		return true, "publish on"
	case kind == KindTopic:
		return false, "subscribe to"
	case kind == KindEvent && publish:
		return true, "notify"
	case kind == KindEvent:
		return false, "listen to"
	case (kind == KindRequest) == publish:
		return true, "call"
	default:
		return false, "serve"
	}
}

// checkPair checks a subscriber's pair: a response subscriber names a
// request publisher of its own client on the same service; nothing else
// names one.
func (r *Router) checkPair(c *client, req CreateSubscriber) error {
	if req.Kind != KindResponse {
		if req.Pair != 0 {
			return fmt.Errorf("%w: pair %d on a subscriber of kind %d", parallax.ErrProtocol, req.Pair, req.Kind)
		}
		return nil
	}
	p := r.pubs[req.Pair]
	switch {
	case p == nil:
		return fmt.Errorf("%w: response subscriber pairs with publisher %d, which does not exist", parallax.ErrProtocol, req.Pair)
	case p.client != c:
		return fmt.Errorf("%w: response subscriber pairs with publisher %d of another client", parallax.ErrPermissionDenied, req.Pair)
	case p.topic.kind != KindRequest || p.topic.name != req.Topic:
		return fmt.Errorf("%w: response subscriber on %q pairs with publisher %d, not a request publisher of that service", parallax.ErrProtocol, req.Topic, req.Pair)
	}
	return nil
}
