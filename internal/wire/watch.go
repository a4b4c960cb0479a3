package wire

import "fmt"

// Service discovery watch (types 112–119, part of the introspection
// range). A client sends [WatchServices]; the router pushes the services
// that exist now as [ServiceUpdate]s with Change [ChangeAppeared], then
// [ServicesSynced], then answers the request with [Ack]. From then on it
// pushes one ServiceUpdate per changed service until the connection ends
// or the client sends [UnwatchServices] once per WatchServices it sent
// (the router counts them: several watchers of one process share its
// control connection).
// The pushes go through the connection's bounded outgoing queue: a
// watcher that does not read its socket is disconnected, like any other
// client that does not drain it.
//
// A service with more than [MaxServiceEndpoints] endpoints is split over
// consecutive ServiceUpdates for the same service, all but the last with
// More set; the receiver joins their Publishers and Subscribers.
const (
	TypeWatchServices   Type = 112
	TypeServiceUpdate   Type = 113
	TypeServicesSynced  Type = 114
	TypeUnwatchServices Type = 115
)

// MaxServiceEndpoints bounds the endpoints (publishers plus subscribers)
// in one [ServiceUpdate]. With every string at [MaxNameLen] a full update
// still fits [MaxMessageSize].
const MaxServiceEndpoints = 128

// Service kinds ([ServiceDesc].Kind).
const (
	// ServiceTopic is a publish/subscribe topic.
	ServiceTopic uint8 = 1
	// ServiceRequestResponse is a request/response service: Publishers
	// are its clients, Subscribers its servers (their request endpoints),
	// Type the request type, ResponseType the response type.
	ServiceRequestResponse uint8 = 2
	// ServiceEvent is an event service: Publishers are its notifiers,
	// Subscribers its listeners.
	ServiceEvent uint8 = 3
)

// Service changes ([ServiceUpdate].Change).
const (
	ChangeAppeared    uint8 = 1
	ChangeUpdated     uint8 = 2
	ChangeDisappeared uint8 = 3
)

// WatchServices asks the router to push the services and their changes;
// answered by [Ack] after the snapshot.
type WatchServices struct{}

// UnwatchServices ends one [WatchServices] of the sender; answered by
// [Ack], or an [Error] when the sender does not watch. After the Ack of
// the last one the router queues no more service pushes for the sender.
type UnwatchServices struct{}

// ServiceUpdate is a push: one service appeared, changed or disappeared
// (or, before [ServicesSynced], existed when the watch started).
type ServiceUpdate struct {
	Change  uint8
	More    bool // the service's endpoints continue in the next ServiceUpdate
	Service ServiceDesc
}

// ServicesSynced is a push: the snapshot the watch started with is
// complete.
type ServicesSynced struct{}

// ServiceDesc describes a service. CanPublish and CanSubscribe apply the
// router's access rules to the watching client's uid and gid. A
// disappeared service has no endpoints.
type ServiceDesc struct {
	Name         string
	Kind         uint8
	Type         TypeInfo
	CanPublish   bool
	CanSubscribe bool
	Publishers   []EndpointDesc
	Subscribers  []EndpointDesc
	ResponseType TypeInfo // request/response services only
}

// EndpointDesc describes one publisher or subscriber. Policy and Capacity
// are a subscriber's (0 for a publisher); History is what a publisher
// keeps or a subscriber asked for.
type EndpointDesc struct {
	ID       uint32 // publisher or subscriber id
	ClientID uint16
	PID      int32
	Process  string // the client's name
	Policy   uint8
	Capacity uint32
	History  uint32
}

func init() {
	typeNames[TypeWatchServices] = "WatchServices"
	typeNames[TypeServiceUpdate] = "ServiceUpdate"
	typeNames[TypeServicesSynced] = "ServicesSynced"
	typeNames[TypeUnwatchServices] = "UnwatchServices"
}

// newWatch is New for the watch messages.
func newWatch(t Type) Message {
	switch t {
	case TypeWatchServices:
		return new(WatchServices)
	case TypeServiceUpdate:
		return new(ServiceUpdate)
	case TypeServicesSynced:
		return new(ServicesSynced)
	case TypeUnwatchServices:
		return new(UnwatchServices)
	}
	return nil
}

// isWatchPush reports whether t is one of the watch pushes.
func isWatchPush(t Type) bool { return t == TypeServiceUpdate || t == TypeServicesSynced }

// MessageType implements [Message].
func (*WatchServices) MessageType() Type { return TypeWatchServices }

// MessageType implements [Message].
func (*UnwatchServices) MessageType() Type { return TypeUnwatchServices }

// Validate implements [Message].
func (*UnwatchServices) Validate() error { return nil }

// MessageType implements [Message].
func (*ServiceUpdate) MessageType() Type { return TypeServiceUpdate }

// MessageType implements [Message].
func (*ServicesSynced) MessageType() Type { return TypeServicesSynced }

// Validate implements [Message].
func (*WatchServices) Validate() error { return nil }

// Validate implements [Message].
func (*ServicesSynced) Validate() error { return nil }

// Validate implements [Message].
func (m *ServiceUpdate) Validate() error {
	t, s := m.MessageType(), &m.Service
	if m.Change < ChangeAppeared || m.Change > ChangeDisappeared {
		return invalid(t, "Change", "%d unknown", m.Change)
	}
	if s.Kind < ServiceTopic || s.Kind > ServiceEvent {
		return invalid(t, "Service.Kind", "%d unknown", s.Kind)
	}
	if s.Kind != ServiceRequestResponse && s.ResponseType != (TypeInfo{}) {
		return invalid(t, "Service.ResponseType", "set on a kind %d service", s.Kind)
	}
	if err := ValidateTopic(s.Name); err != nil {
		return fmt.Errorf("%s.Service.Name: %w", t, err)
	}
	if err := s.Type.validate(t); err != nil {
		return err
	}
	if err := s.ResponseType.validate(t); err != nil {
		return err
	}
	n := len(s.Publishers) + len(s.Subscribers)
	if n > MaxServiceEndpoints {
		return invalid(t, "Service", "has %d endpoints, limit %d per message", n, MaxServiceEndpoints)
	}
	if m.Change == ChangeDisappeared && (n > 0 || m.More) {
		return invalid(t, "Service", "disappeared with %d endpoints (More %t)", n, m.More)
	}
	for i := range s.Publishers {
		if err := s.Publishers[i].validate(t, fmt.Sprintf("Service.Publishers[%d]", i), false); err != nil {
			return err
		}
	}
	for i := range s.Subscribers {
		if err := s.Subscribers[i].validate(t, fmt.Sprintf("Service.Subscribers[%d]", i), true); err != nil {
			return err
		}
	}
	return nil
}

func (e *EndpointDesc) validate(t Type, field string, sub bool) error {
	switch {
	case e.ID == 0:
		return invalid(t, field+".ID", "is 0")
	case e.ClientID == 0:
		return invalid(t, field+".ClientID", "is 0")
	case e.PID < 0:
		return invalid(t, field+".PID", "%d negative", e.PID)
	case e.History > MaxHistory:
		return invalid(t, field+".History", "%d exceeds %d", e.History, MaxHistory)
	case !sub && (e.Policy != 0 || e.Capacity != 0):
		return invalid(t, field, "a publisher with policy %d and capacity %d (want 0)", e.Policy, e.Capacity)
	case sub && e.Policy != PolicyDiscardOldest && e.Policy != PolicyBlockProducer:
		return invalid(t, field+".Policy", "%d unknown", e.Policy)
	case sub && (e.Capacity == 0 || e.Capacity > MaxQueueCapacity):
		return invalid(t, field+".Capacity", "%d is not in [1, %d]", e.Capacity, MaxQueueCapacity)
	}
	return checkLen(t, field+".Process", e.Process, MaxNameLen)
}
