package wire

import (
	"fmt"
	"math"
)

// Introspection messages (types 64–127). A client sends them after the
// normal [Hello] handshake on its control connection; the router answers
// each with the matching list or info message, or an [Error]. Lists are
// paged: a request names the first entry (Offset) and the reply carries at
// most [MaxIntrospectPage] entries and the offset of the next page in Next
// (0 when the list is complete). Pages are cut from a fresh snapshot on every
// request, so a list that changes between pages may repeat or skip entries.
//
// Counters are monotonic over the router's lifetime unless said otherwise;
// rates are per second, averaged over the router's last sampling interval
// (about one second), and always finite and non-negative.
const (
	TypeGetRouterInfo   Type = 64
	TypeRouterInfo      Type = 65
	TypeListProcesses   Type = 66
	TypeProcessList     Type = 67
	TypeListTopics      Type = 68
	TypeTopicList       Type = 69
	TypeListConnections Type = 70
	TypeConnectionList  Type = 71
	// 72 and 73 (ListPools, PoolList: the router-wide pools of the removed
	// shared memory model) are reserved; see types.go.
)

// MaxIntrospectPage is the largest number of entries in one introspection
// list reply. With every string at [MaxNameLen] a full page still fits
// [MaxMessageSize] (TestLargestIntrospectFit).
const MaxIntrospectPage = 64

var introspectNames = map[Type]string{
	TypeGetRouterInfo:   "GetRouterInfo",
	TypeRouterInfo:      "RouterInfo",
	TypeListProcesses:   "ListProcesses",
	TypeProcessList:     "ProcessList",
	TypeListTopics:      "ListTopics",
	TypeTopicList:       "TopicList",
	TypeListConnections: "ListConnections",
	TypeConnectionList:  "ConnectionList",
}

func init() {
	for t, n := range introspectNames {
		typeNames[t] = n
	}
}

// introspectReplyType is ReplyType for the introspection range.
func introspectReplyType(t Type) (Type, bool) {
	switch t {
	case TypeGetRouterInfo, TypeListProcesses, TypeListTopics, TypeListConnections:
		return t + 1, true
	}
	return 0, false
}

// newIntrospect is New for the introspection range.
func newIntrospect(t Type) Message {
	switch t {
	case TypeGetRouterInfo:
		return new(GetRouterInfo)
	case TypeRouterInfo:
		return new(RouterInfo)
	case TypeListProcesses:
		return new(ListProcesses)
	case TypeProcessList:
		return new(ProcessList)
	case TypeListTopics:
		return new(ListTopics)
	case TypeTopicList:
		return new(TopicList)
	case TypeListConnections:
		return new(ListConnections)
	case TypeConnectionList:
		return new(ConnectionList)
	}
	return nil
}

// GetRouterInfo asks for the router's state; answered by [RouterInfo].
type GetRouterInfo struct{}

// RouterInfo describes the router as a whole.
type RouterInfo struct {
	Version     string // Parallax version of the router build
	PID         int32
	Domain      string
	Socket      string
	UptimeMs    uint64
	Monitor     string // process-exit monitor in use: "ebpf", "pidfd" or "socket"
	Processes   uint32 // registered client processes
	Topics      uint32
	Connections uint32
	Reclaims    uint64 // dead clients whose resources were reclaimed
}

// ListProcesses asks for a page of registered client processes; answered by
// [ProcessList].
type ListProcesses struct{ Offset uint32 }

// ProcessList is one page of [ProcessStat], sorted by client id.
type ProcessList struct {
	Processes []ProcessStat
	Next      uint32
}

// ProcessStat describes one client process.
type ProcessStat struct {
	ClientID    uint16
	PID         int32
	UID, GID    uint32
	Name        string
	Monitor     string // how its exit is detected: "ebpf", "pidfd" or "socket"
	Publishers  uint32
	Subscribers uint32
}

// ListTopics asks for a page of topics; answered by [TopicList].
type ListTopics struct{ Offset uint32 }

// TopicList is one page of [TopicStat], sorted by name.
type TopicList struct {
	Topics []TopicStat
	Next   uint32
}

// TopicStat describes one topic. Published counts the samples the router saw
// entering its rings (a publisher's pushes, counted once however many
// subscribers it has; samples published while nobody subscribes are not
// seen); Delivered counts samples taken by subscribers; Dropped counts
// samples a discard-oldest queue overwrote. QueueDepth is the sum of the
// entries waiting in the topic's rings.
type TopicStat struct {
	Name          string
	Type          TypeInfo
	Publishers    uint32
	Subscribers   uint32
	Connections   uint32
	Published     uint64
	Delivered     uint64
	Dropped       uint64
	QueueDepth    uint64
	PublishRate   float64
	DeliverRate   float64
	DropRate      float64
	QueueCapacity uint64 // sum of the capacities of the topic's rings
}

// ListConnections asks for a page of publisher–subscriber connections;
// answered by [ConnectionList].
type ListConnections struct{ Offset uint32 }

// ConnectionList is one page of [ConnStat], sorted by connection id.
type ConnectionList struct {
	Connections []ConnStat
	Next        uint32
}

// ConnStat describes one publisher–subscriber connection (one ring). Its
// traffic (Delivered, Dropped, Returned) is what its publisher last
// reported (ReportMemory.Conns), AgeMs ago; Reported is false (and the
// counters 0) until the publisher reported it. Within version 4, before its
// release, the router-side fields nothing filled (Depth, Pushed, Popped,
// the rates and SubSleeps) gave way to these.
type ConnStat struct {
	ConnID    uint32
	Topic     string
	PubID     uint32
	SubID     uint32
	PubPID    int32
	SubPID    int32
	Capacity  uint32
	Policy    uint8 // PolicyDiscardOldest or PolicyBlockProducer
	Reported  bool
	AgeMs     uint64
	Delivered uint64
	Dropped   uint64
	Returned  uint64
}

// MessageType implementations.

func (*GetRouterInfo) MessageType() Type   { return TypeGetRouterInfo }
func (*RouterInfo) MessageType() Type      { return TypeRouterInfo }
func (*ListProcesses) MessageType() Type   { return TypeListProcesses }
func (*ProcessList) MessageType() Type     { return TypeProcessList }
func (*ListTopics) MessageType() Type      { return TypeListTopics }
func (*TopicList) MessageType() Type       { return TypeTopicList }
func (*ListConnections) MessageType() Type { return TypeListConnections }
func (*ConnectionList) MessageType() Type  { return TypeConnectionList }

// Validate implementations.

// Validate implements [Message].
func (*GetRouterInfo) Validate() error { return nil }

// Validate implements [Message].
func (*ListProcesses) Validate() error { return nil }

// Validate implements [Message].
func (*ListTopics) Validate() error { return nil }

// Validate implements [Message].
func (*ListConnections) Validate() error { return nil }

// Validate implements [Message].
func (m *RouterInfo) Validate() error {
	t := m.MessageType()
	if m.PID < 0 {
		return invalid(t, "PID", "%d negative", m.PID)
	}
	if m.Domain != "" {
		if err := ValidateDomain(m.Domain); err != nil {
			return fmt.Errorf("%s.Domain: %w", t, err)
		}
	}
	for _, f := range []struct{ name, v string }{{"Version", m.Version}, {"Socket", m.Socket}, {"Monitor", m.Monitor}} {
		if err := checkLen(t, f.name, f.v, MaxNameLen); err != nil {
			return err
		}
	}
	return nil
}

func checkPage(t Type, field string, n int) error {
	if n > MaxIntrospectPage {
		return invalid(t, field, "has %d entries, limit %d", n, MaxIntrospectPage)
	}
	return nil
}

func checkRate(t Type, field string, v float64) error {
	if math.IsNaN(v) || math.IsInf(v, 0) || v < 0 {
		return invalid(t, field, "%v is not a finite non-negative rate", v)
	}
	return nil
}

// Validate implements [Message].
func (m *ProcessList) Validate() error {
	t := m.MessageType()
	if err := checkPage(t, "Processes", len(m.Processes)); err != nil {
		return err
	}
	for i, p := range m.Processes {
		f := fmt.Sprintf("Processes[%d]", i)
		if p.PID < 0 {
			return invalid(t, f+".PID", "%d negative", p.PID)
		}
		if err := checkLen(t, f+".Name", p.Name, MaxNameLen); err != nil {
			return err
		}
		if err := checkLen(t, f+".Monitor", p.Monitor, MaxNameLen); err != nil {
			return err
		}
	}
	return nil
}

// Validate implements [Message].
func (m *TopicList) Validate() error {
	t := m.MessageType()
	if err := checkPage(t, "Topics", len(m.Topics)); err != nil {
		return err
	}
	for i := range m.Topics {
		p := &m.Topics[i]
		f := fmt.Sprintf("Topics[%d]", i)
		if err := ValidateTopic(p.Name); err != nil {
			return fmt.Errorf("%s.%s.Name: %w", t, f, err)
		}
		if err := p.Type.validate(t); err != nil {
			return err
		}
		for _, r := range []struct {
			name string
			v    float64
		}{{"PublishRate", p.PublishRate}, {"DeliverRate", p.DeliverRate}, {"DropRate", p.DropRate}} {
			if err := checkRate(t, f+"."+r.name, r.v); err != nil {
				return err
			}
		}
	}
	return nil
}

// Validate implements [Message].
func (m *ConnectionList) Validate() error {
	t := m.MessageType()
	if err := checkPage(t, "Connections", len(m.Connections)); err != nil {
		return err
	}
	for i := range m.Connections {
		c := &m.Connections[i]
		f := fmt.Sprintf("Connections[%d]", i)
		if err := ValidateTopic(c.Topic); err != nil {
			return fmt.Errorf("%s.%s.Topic: %w", t, f, err)
		}
		if err := checkPolicy(t, c.Policy); err != nil {
			return err
		}
		if c.PubPID < 0 || c.SubPID < 0 {
			return invalid(t, f+".PID", "negative")
		}
		if c.Returned > c.Delivered {
			return invalid(t, f, "Returned %d exceeds Delivered %d", c.Returned, c.Delivered)
		}
	}
	return nil
}
