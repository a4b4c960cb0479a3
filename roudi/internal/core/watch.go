package core

import (
	"fmt"
	"slices"
	"strings"

	"github.com/parallax-ipc/parallax"
)

// Service discovery watches.
//
// A client that sends [WatchServices] becomes a watcher: the core answers
// with the current services as [ServiceChanged] actions (Change
// [ServiceAppeared], in name order), then [WatchSynced], then the [Reply];
// after that, every step that changes a service emits one ServiceChanged
// per watcher and changed service, in name order. A service is a topic
// ([ServiceTopic]), a request/response service ([ServiceRequestResponse])
// or an event service ([ServiceEvent]).
//
// The core decides what changed: after each step (ticks change no
// service) it compares every topic's type and publisher and subscriber ids
// with what the watchers were last told (a request/response service is
// its two topics, see rpcService). Endpoint ids are never reused and
// an endpoint's attributes never change, so equal ids mean an equal
// service. The comparison costs O(topics) per step, allocates only for
// the services that changed, and runs only while a watcher exists.

// ServiceKind says what kind of service a [Service] is. Its values are
// part of the protocol (wire.ServiceKind).
type ServiceKind uint8

// Service kinds.
const (
	// ServiceTopic is a publish/subscribe topic.
	ServiceTopic ServiceKind = 1
	// ServiceRequestResponse is a request/response service
	// (docs/design/request-response.md): its publishers are the clients'
	// request publishers, its subscribers the servers' request
	// subscribers; Type is the request type, ResponseType the response
	// type; CanPublish says "may call", CanSubscribe "may serve".
	ServiceRequestResponse ServiceKind = 2
	// ServiceEvent is an event service (docs/design/events.md): its
	// publishers are the notifiers, its subscribers the listeners;
	// CanPublish says "may notify", CanSubscribe "may listen".
	ServiceEvent ServiceKind = 3
)

func (k ServiceKind) String() string {
	switch k {
	case ServiceTopic:
		return "topic"
	case ServiceRequestResponse:
		return "request-response"
	case ServiceEvent:
		return "event"
	}
	return fmt.Sprintf("kind(%d)", uint8(k))
}

// svcKey names a service: a topic, a request/response service and an
// event service of one name are three services.
type svcKey struct {
	kind ServiceKind
	name string
}

func (a svcKey) compare(b svcKey) int {
	if a.name != b.name {
		return strings.Compare(a.name, b.name)
	}
	return int(a.kind) - int(b.kind)
}

// ServiceChange says how a service changed. Its values are part of the
// protocol (wire.ServiceUpdate.Change).
type ServiceChange uint8

// Service changes.
const (
	// ServiceAppeared: the service exists now and did not before (or is
	// part of a watcher's initial snapshot).
	ServiceAppeared ServiceChange = 1
	// ServiceUpdated: its endpoints changed.
	ServiceUpdated ServiceChange = 2
	// ServiceDisappeared: it has no endpoint any more; the [Service]
	// carries its last known type and no endpoint.
	ServiceDisappeared ServiceChange = 3
)

func (c ServiceChange) String() string {
	switch c {
	case ServiceAppeared:
		return "appeared"
	case ServiceUpdated:
		return "changed"
	case ServiceDisappeared:
		return "disappeared"
	}
	return fmt.Sprintf("change(%d)", uint8(c))
}

// WatchServices makes the requesting client a service watcher (see
// watch.go); answered by [Watching]. Asking again is answered with a
// fresh snapshot.
type WatchServices struct{}

func (WatchServices) isRequest() {}

// Watching answers [WatchServices].
type Watching struct{}

func (Watching) isResult() {}

// UnwatchServices ends one of the requesting client's watches: the core
// counts the [WatchServices] of each client (several watchers of one
// process share its control connection) and stops pushing to the client
// when the count drops to zero. Answered by [Unwatched]; a client that
// does not watch is refused.
type UnwatchServices struct{}

func (UnwatchServices) isRequest() {}

// Unwatched answers [UnwatchServices].
type Unwatched struct{}

func (Unwatched) isResult() {}

// Endpoint is one publisher or subscriber of a [Service]. Policy and
// Capacity are a subscriber's (zero for a publisher); History is what a
// publisher keeps or a subscriber asked for.
type Endpoint struct {
	ID       uint32 // PubID or SubID
	Client   ClientID
	PID      int32
	Process  string // the client's name
	Policy   Policy
	Capacity int
	History  int
}

// Service is one service as a watcher sees it. CanPublish and
// CanSubscribe apply the access rules to the watcher's uid and gid.
type Service struct {
	Name         string
	Kind         ServiceKind
	Type         TypeInfo
	ResponseType TypeInfo // request/response services only
	CanPublish   bool
	CanSubscribe bool
	Publishers   []Endpoint // in creation order
	Subscribers  []Endpoint
}

// ServiceChanged tells the watcher on Conn that Service changed.
type ServiceChanged struct {
	Conn    ConnID
	Change  ServiceChange
	Service Service
}

// WatchSynced tells the watcher on Conn that the snapshot it asked for is
// complete: the ServiceChanged actions before it were the services that
// existed; those after it are changes.
type WatchSynced struct{ Conn ConnID }

func (ServiceChanged) isAction() {}
func (WatchSynced) isAction()    {}

func (a ServiceChanged) String() string {
	var b strings.Builder
	s := &a.Service
	fmt.Fprintf(&b, "service %v %v %s %q type=%v pub=%t sub=%t", a.Conn, a.Change, s.Kind, s.Name, s.Type, s.CanPublish, s.CanSubscribe)
	for _, e := range s.Publishers {
		fmt.Fprintf(&b, " p%d(client %d pid %d %q history=%d)", e.ID, e.Client, e.PID, e.Process, e.History)
	}
	for _, e := range s.Subscribers {
		fmt.Fprintf(&b, " s%d(client %d pid %d %q cap=%d %v history=%d)", e.ID, e.Client, e.PID, e.Process, e.Capacity, e.Policy, e.History)
	}
	return b.String()
}

func (a WatchSynced) String() string { return fmt.Sprintf("watch-synced %v", a.Conn) }

// watchState is the core's record of its watchers and of what they were
// last told.
type watchState struct {
	watchers map[ConnID]*client
	count    map[ConnID]int        // WatchServices not yet unwatched, per watcher
	told     map[svcKey]serviceSig // the services as of the last step
}

// serviceSig identifies a service's state: equal signatures mean equal
// services (ids are never reused; endpoints never change).
type serviceSig struct {
	typ  TypeInfo
	pubs []PubID
	subs []SubID
	// resp is a request/response service's response topic (nil for a
	// topic, or while it does not exist).
	resp *serviceSig
}

// matches reports whether the service made of t (and, for a request/
// response service, its response topic rt) is still in the state s
// recorded. t or rt may be nil (a service half created or removed).
func (s serviceSig) matches(t, rt *topic) bool {
	if !s.topicMatches(t) {
		return false
	}
	if s.resp == nil {
		return rt == nil
	}
	return s.resp.topicMatches(rt)
}

func (s serviceSig) topicMatches(t *topic) bool {
	if t == nil {
		return s.typ == (TypeInfo{}) && s.pubs == nil && s.subs == nil
	}
	return s.typ == t.typ && slices.Equal(s.pubs, t.pubs) && slices.Equal(s.subs, t.subs)
}

// services returns every service now, by key: a topic or an event service
// is its topic, a request/response service its request topic (nil while
// only the response topic exists) and response topic.
func (r *Router) services() map[svcKey][2]*topic {
	m := make(map[svcKey][2]*topic, len(r.topics)+len(r.rpc))
	for name, t := range r.topics {
		m[svcKey{ServiceTopic, name}] = [2]*topic{t, nil}
	}
	for k, t := range r.rpc {
		key := serviceOf(k)
		e := m[key]
		if k.kind == KindResponse {
			e[1] = t
		} else {
			e[0] = t
		}
		m[key] = e
	}
	return m
}

// serviceOf names the service topic k belongs to.
func serviceOf(k rpcKey) svcKey {
	if k.kind == KindEvent {
		return svcKey{ServiceEvent, k.name}
	}
	return svcKey{ServiceRequestResponse, k.name}
}

// serviceTopics returns the topics of service key (both nil: none).
func (r *Router) serviceTopics(key svcKey) (t, rt *topic) {
	switch key.kind {
	case ServiceTopic:
		return r.topics[key.name], nil
	case ServiceEvent:
		return r.rpc[rpcKey{KindEvent, key.name}], nil
	}
	return r.rpc[rpcKey{KindRequest, key.name}], r.rpc[rpcKey{KindResponse, key.name}]
}

// watchRequest registers c as a watcher and sends it the snapshot.
func (r *Router) watchRequest(c *client, ev ClientRequest, reply func(Result, error)) {
	w := &r.watch
	if w.watchers == nil {
		w.watchers = make(map[ConnID]*client)
		w.count = make(map[ConnID]int)
	}
	if len(w.watchers) == 0 {
		w.told = r.serviceSigs() // nobody watched: start from now
	}
	if w.watchers[c.conn] != c {
		w.count[c.conn] = 0 // a departed client's conn id is not reused, but be exact
	}
	w.watchers[c.conn] = c
	w.count[c.conn]++
	for _, key := range sortedSvcKeys(w.told) {
		t, rt := r.serviceTopics(key)
		r.emit(ServiceChanged{Conn: c.conn, Change: ServiceAppeared, Service: r.service(key, t, rt, c)})
	}
	r.emit(WatchSynced{Conn: c.conn})
	reply(Watching{}, nil)
}

// unwatchRequest ends one of c's watches; the last one makes c no
// watcher any more.
func (r *Router) unwatchRequest(c *client, reply func(Result, error)) {
	w := &r.watch
	if w.watchers[c.conn] != c {
		reply(nil, fmt.Errorf("unwatch services: %w: client %d does not watch", parallax.ErrProtocol, c.id))
		return
	}
	if w.count[c.conn]--; w.count[c.conn] <= 0 {
		delete(w.watchers, c.conn)
		delete(w.count, c.conn)
		if len(w.watchers) == 0 {
			w.told = nil
		}
	}
	reply(Unwatched{}, nil)
}

// watches returns how many watches c has open.
func (r *Router) watches(c *client) int {
	if r.watch.watchers[c.conn] != c {
		return 0
	}
	return r.watch.count[c.conn]
}

// watchStep tells the watchers what the step that just ran changed.
func (r *Router) watchStep(ev Event) {
	w := &r.watch
	if len(w.watchers) == 0 {
		return
	}
	if _, ok := ev.(Tick); ok {
		return
	}
	for conn, c := range w.watchers {
		if r.conns[conn] != c {
			delete(w.watchers, conn) // gone
			delete(w.count, conn)
		}
	}
	if len(w.watchers) == 0 {
		w.told = nil
		return
	}
	// Only the services whose signature differs are cloned and sorted: a
	// step that changed no service allocates nothing here.
	var keys []svcKey
	for name, t := range r.topics {
		if old, ok := w.told[svcKey{ServiceTopic, name}]; !ok || !old.matches(t, nil) {
			keys = append(keys, svcKey{ServiceTopic, name})
		}
	}
	for k := range r.rpc {
		key := serviceOf(k)
		t, rt := r.serviceTopics(key)
		if old, ok := w.told[key]; (!ok || !old.matches(t, rt)) && !slices.Contains(keys, key) {
			keys = append(keys, key)
		}
	}
	for key := range w.told {
		if t, rt := r.serviceTopics(key); t == nil && rt == nil {
			keys = append(keys, key)
		}
	}
	if len(keys) == 0 {
		return
	}
	slices.SortFunc(keys, svcKey.compare)
	conns := sortedKeys(w.watchers)
	for _, key := range keys {
		name := key.name
		old, had := w.told[key]
		t, rt := r.serviceTopics(key)
		has := t != nil || rt != nil
		ch := ServiceUpdated
		switch {
		case had && !has:
			ch = ServiceDisappeared
			delete(w.told, key)
		case !had && has:
			ch = ServiceAppeared
		}
		if has {
			w.told[key] = sigOf(t, rt)
		}
		for _, conn := range conns {
			c := w.watchers[conn]
			var s Service
			if has {
				s = r.service(key, t, rt, c)
			} else {
				s = Service{Name: name, Kind: key.kind, Type: old.typ,
					CanPublish: r.allowed(name, c.uid, c.gid, true), CanSubscribe: r.allowed(name, c.uid, c.gid, false)}
				if old.resp != nil {
					s.ResponseType = old.resp.typ
				}
			}
			r.emit(ServiceChanged{Conn: conn, Change: ch, Service: s})
		}
	}
}

func (r *Router) serviceSigs() map[svcKey]serviceSig {
	all := r.services()
	m := make(map[svcKey]serviceSig, len(all))
	for key, ts := range all {
		m[key] = sigOf(ts[0], ts[1])
	}
	return m
}

// sigOf records the service of t (and response topic rt, nil for a topic).
func sigOf(t, rt *topic) serviceSig {
	var s serviceSig
	if t != nil {
		s = serviceSig{typ: t.typ, pubs: slices.Clone(t.pubs), subs: slices.Clone(t.subs)}
	}
	if rt != nil {
		r := sigOf(rt, nil)
		s.resp = &r
	}
	return s
}

// service describes service key (topic t, response topic rt) as watcher w
// sees it. For a request/response service the endpoints are those of the
// request topic: clients (publishers) and servers (subscribers).
func (r *Router) service(key svcKey, t, rt *topic, w *client) Service {
	s := Service{Name: key.name, Kind: key.kind,
		CanPublish: r.allowed(key.name, w.uid, w.gid, true), CanSubscribe: r.allowed(key.name, w.uid, w.gid, false)}
	if rt != nil {
		s.ResponseType = rt.typ
	}
	if t == nil {
		return s
	}
	s.Type = t.typ
	for _, id := range t.pubs {
		p := r.pubs[id]
		s.Publishers = append(s.Publishers, Endpoint{ID: uint32(id), Client: p.client.id, PID: p.client.pid,
			Process: p.client.name, History: p.history})
	}
	for _, id := range t.subs {
		sb := r.subs[id]
		s.Subscribers = append(s.Subscribers, Endpoint{ID: uint32(id), Client: sb.client.id, PID: sb.client.pid,
			Process: sb.client.name, Policy: sb.policy, Capacity: sb.capacity, History: sb.history})
	}
	return s
}

func sortedSvcKeys(m map[svcKey]serviceSig) []svcKey {
	ks := make([]svcKey, 0, len(m))
	for k := range m {
		ks = append(ks, k)
	}
	slices.SortFunc(ks, svcKey.compare)
	return ks
}

func sortedKeys[K interface{ ~string | ~uint64 }, V any](m map[K]V) []K {
	ks := make([]K, 0, len(m))
	for k := range m {
		ks = append(ks, k)
	}
	slices.Sort(ks)
	return ks
}
