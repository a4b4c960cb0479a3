package core

import (
	"fmt"
	"slices"
	"strings"
)

// Service discovery watches.
//
// A client that sends [WatchServices] becomes a watcher: the core answers
// with the current services as [ServiceChanged] actions (Change
// [ServiceAppeared], in name order), then [WatchSynced], then the [Reply];
// after that, every step that changes a service emits one ServiceChanged
// per watcher and changed service, in name order. A service is a topic
// today ([ServiceTopic]); request/response and event services will be
// further kinds.
//
// The core decides what changed: after each step (ticks change no
// service) it compares every topic's type and publisher and subscriber ids
// with what the watchers were last told. Endpoint ids are never reused and
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
)

func (k ServiceKind) String() string {
	if k == ServiceTopic {
		return "topic"
	}
	return fmt.Sprintf("kind(%d)", uint8(k))
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
	told     map[string]serviceSig // the services as of the last step
}

// serviceSig identifies a service's state: equal signatures mean equal
// services (ids are never reused; endpoints never change).
type serviceSig struct {
	typ  TypeInfo
	pubs []PubID
	subs []SubID
}

// matches reports whether t is still in the state s recorded.
func (s serviceSig) matches(t *topic) bool {
	return s.typ == t.typ && slices.Equal(s.pubs, t.pubs) && slices.Equal(s.subs, t.subs)
}

// watchRequest registers c as a watcher and sends it the snapshot.
func (r *Router) watchRequest(c *client, ev ClientRequest, reply func(Result, error)) {
	w := &r.watch
	if w.watchers == nil {
		w.watchers = make(map[ConnID]*client)
	}
	if len(w.watchers) == 0 {
		w.told = r.serviceSigs() // nobody watched: start from now
	}
	w.watchers[c.conn] = c
	for _, name := range sortedKeys(w.told) {
		r.emit(ServiceChanged{Conn: c.conn, Change: ServiceAppeared, Service: r.service(r.topics[name], c)})
	}
	r.emit(WatchSynced{Conn: c.conn})
	reply(Watching{}, nil)
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
		}
	}
	if len(w.watchers) == 0 {
		w.told = nil
		return
	}
	// Only the topics whose signature differs are cloned and sorted: a
	// step that changed no service allocates nothing here.
	var names []string
	for name, t := range r.topics {
		if old, ok := w.told[name]; !ok || !old.matches(t) {
			names = append(names, name)
		}
	}
	for name := range w.told {
		if _, ok := r.topics[name]; !ok {
			names = append(names, name)
		}
	}
	if len(names) == 0 {
		return
	}
	slices.Sort(names)
	conns := sortedKeys(w.watchers)
	for _, name := range names {
		old, had := w.told[name]
		t, has := r.topics[name]
		ch := ServiceUpdated
		switch {
		case had && !has:
			ch = ServiceDisappeared
			delete(w.told, name)
		case !had && has:
			ch = ServiceAppeared
		}
		if has {
			w.told[name] = sigOf(t)
		}
		for _, conn := range conns {
			c := w.watchers[conn]
			var s Service
			if has {
				s = r.service(t, c)
			} else {
				s = Service{Name: name, Kind: ServiceTopic, Type: old.typ,
					CanPublish: r.allowed(name, c.uid, c.gid, true), CanSubscribe: r.allowed(name, c.uid, c.gid, false)}
			}
			r.emit(ServiceChanged{Conn: conn, Change: ch, Service: s})
		}
	}
}

func (r *Router) serviceSigs() map[string]serviceSig {
	m := make(map[string]serviceSig, len(r.topics))
	for name, t := range r.topics {
		m[name] = sigOf(t)
	}
	return m
}

func sigOf(t *topic) serviceSig {
	return serviceSig{typ: t.typ, pubs: slices.Clone(t.pubs), subs: slices.Clone(t.subs)}
}

// service describes topic t as watcher w sees it.
func (r *Router) service(t *topic, w *client) Service {
	s := Service{Name: t.name, Kind: ServiceTopic, Type: t.typ,
		CanPublish: r.allowed(t.name, w.uid, w.gid, true), CanSubscribe: r.allowed(t.name, w.uid, w.gid, false)}
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

func sortedKeys[K interface{ ~string | ~uint64 }, V any](m map[K]V) []K {
	ks := make([]K, 0, len(m))
	for k := range m {
		ks = append(ks, k)
	}
	slices.Sort(ks)
	return ks
}
