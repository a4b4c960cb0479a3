package services

import (
	"fmt"
	"slices"
	"strings"

	"github.com/parallax-ipc/parallax"
)

// Kind says what kind of service a [Service] is.
type Kind uint8

// Service kinds.
const (
	// KindTopic is a publish/subscribe topic.
	KindTopic Kind = 1
	// KindRequestResponse is a request/response service (package rpc):
	// its Publishers are the clients, its Subscribers the servers; Type
	// is the request type and ResponseType the response type; CanPublish
	// says whether the caller may call it, CanSubscribe whether it may
	// serve it. A topic and a service of one name are two services.
	KindRequestResponse Kind = 2
	// KindEvent is an event service (package event): its Publishers are
	// the notifiers, its Subscribers the listeners; CanPublish says
	// whether the caller may notify, CanSubscribe whether it may listen.
	KindEvent Kind = 3
)

// String returns "topic", "request-response", "event", or "kind(N)" for a kind
// this build does not know.
func (k Kind) String() string {
	switch k {
	case KindTopic:
		return "topic"
	case KindRequestResponse:
		return "request-response"
	case KindEvent:
		return "event"
	}
	return fmt.Sprintf("kind(%d)", uint8(k))
}

// Type is a service's payload type: its name (see [parallax.TypeName]),
// size and alignment in bytes. Size 0 means untyped bytes.
type Type struct {
	Name  string
	Size  uint32
	Align uint32
}

// String returns "name/size/align".
func (t Type) String() string { return fmt.Sprintf("%s/%d/%d", t.Name, t.Size, t.Align) }

// Endpoint is one publisher or subscriber of a service.
type Endpoint struct {
	// ID is the publisher's or subscriber's id in the router.
	ID uint32
	// ClientID is the router's id of the process's control connection.
	ClientID uint16
	// PID is the process id, as the router sees it (its pid namespace).
	PID int32
	// Process is the name the process gave the router.
	Process string
	// Policy is a subscriber's queue-full policy (zero for publishers).
	Policy parallax.Policy
	// QueueCapacity is a subscriber's queue capacity (0 for publishers).
	QueueCapacity int
	// History is the samples a publisher keeps for late joiners, or the
	// samples a subscriber asked for on joining.
	History int
}

// Service is one service the router knows.
//
// CanPublish and CanSubscribe say whether the router's access rules let
// the calling process (its uid and gid) publish or subscribe; they do not
// consider type compatibility or limits.
type Service struct {
	Name         string
	Kind         Kind
	Type         Type
	CanPublish   bool
	CanSubscribe bool
	// Publishers and Subscribers are in creation order. A disappeared
	// service has none.
	Publishers  []Endpoint
	Subscribers []Endpoint
	// ResponseType is a request/response service's response type.
	ResponseType Type
}

// key names a service: a topic and a request/response service of one name
// are two services.
type key struct {
	name string
	kind Kind
}

func (s Service) key() key { return key{s.Name, s.Kind} }

func compareKeys(a, b key) int {
	if a.name != b.name {
		return strings.Compare(a.name, b.name)
	}
	return int(a.kind) - int(b.kind)
}

// Equal reports whether s and o describe the same state.
func (s Service) Equal(o Service) bool {
	return s.Name == o.Name && s.Kind == o.Kind && s.Type == o.Type && s.ResponseType == o.ResponseType &&
		s.CanPublish == o.CanPublish && s.CanSubscribe == o.CanSubscribe &&
		slices.Equal(s.Publishers, o.Publishers) && slices.Equal(s.Subscribers, o.Subscribers)
}

// clone returns a copy of s that shares no slice with it.
func (s Service) clone() Service {
	s.Publishers = slices.Clone(s.Publishers)
	s.Subscribers = slices.Clone(s.Subscribers)
	return s
}

// EventKind says what happened to a service.
type EventKind uint8

// Event kinds.
const (
	// Appeared: the service exists and was not reported before (the
	// initial snapshot is a series of Appeared events).
	Appeared EventKind = iota + 1
	// Changed: its endpoints (or access) changed.
	Changed
	// Disappeared: it has no endpoint any more.
	Disappeared
)

// String returns "appeared", "changed" or "disappeared".
func (k EventKind) String() string {
	switch k {
	case Appeared:
		return "appeared"
	case Changed:
		return "changed"
	case Disappeared:
		return "disappeared"
	}
	return fmt.Sprintf("event(%d)", uint8(k))
}

// Event is one change reported by a [Watcher]. Service is the service's
// state after the change (without endpoints for [Disappeared]).
type Event struct {
	Kind    EventKind
	Service Service
}

// MarshalText implements encoding.TextMarshaler with [Kind.String].
func (k Kind) MarshalText() ([]byte, error) { return []byte(k.String()), nil }

// MarshalText implements encoding.TextMarshaler with [EventKind.String].
func (k EventKind) MarshalText() ([]byte, error) { return []byte(k.String()), nil }

// UnmarshalText implements encoding.TextUnmarshaler: it accepts what
// MarshalText produces.
func (k *Kind) UnmarshalText(b []byte) error {
	for c := range Kind(255) {
		if c.String() == string(b) {
			*k = c
			return nil
		}
	}
	var n uint8
	if _, err := fmt.Sscanf(string(b), "kind(%d)", &n); err != nil {
		return fmt.Errorf("parse service kind %q: %w", b, parallax.ErrInvalidArgument)
	}
	*k = Kind(n)
	return nil
}

// UnmarshalText implements encoding.TextUnmarshaler: it accepts what
// MarshalText produces.
func (k *EventKind) UnmarshalText(b []byte) error {
	for _, c := range []EventKind{Appeared, Changed, Disappeared} {
		if c.String() == string(b) {
			*k = c
			return nil
		}
	}
	return fmt.Errorf("parse event kind %q: %w", b, parallax.ErrInvalidArgument)
}
