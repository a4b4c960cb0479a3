package core

import "fmt"

// Owned memory model (design docs/design/memory-ownership.md §1.3, §3.2,
// §4.1): the rules, requests, events and actions of memory.go and
// conn_state.go.

// Memory sizes and bounds the publishers' data segments and the
// connection segments.
type Memory struct {
	// DefaultMaxPayload is the chunk size of an untyped publisher that
	// declares none; a multiple of 64.
	DefaultMaxPayload uint32
	// DefaultMaxLoans is a publisher's loans outstanding at once when it
	// declares none.
	DefaultMaxLoans int
	// DefaultMaxHeld is a subscriber's samples held at once (per
	// connection) when it declares none.
	DefaultMaxHeld int
	// ConnectionBudget caps the bytes of chunks one connection may keep
	// outstanding: bound(c) = min(capacity + max held, max(2, budget /
	// chunk size)).
	ConnectionBudget uint64
	// Hugepages decides the backing of data segments; HugepageMinBytes is
	// the smallest segment HugeAuto backs with 2 MiB pages.
	Hugepages        HugeMode
	HugepageMinBytes uint64
	// MaxPublisherBytes bounds the data segment bytes of one publisher,
	// MaxSharedBytes the bytes of every owned segment of the domain (data
	// and connection), MaxSegmentsPerPublisher one publisher's data
	// segments.
	MaxPublisherBytes       uint64
	MaxSharedBytes          uint64
	MaxSegmentsPerPublisher int
}

// HugeMode is the hugepage policy of data segments.
type HugeMode uint8

// Hugepage policies ([publishers] hugepages).
const (
	HugeAuto   HugeMode = iota // 2 MiB pages for segments of at least HugepageMinBytes
	HugeNever                  // normal pages
	HugeAlways                 // 2 MiB pages for every data segment, required
)

func (m HugeMode) String() string {
	switch m {
	case HugeAuto:
		return "auto"
	case HugeNever:
		return "never"
	case HugeAlways:
		return "always"
	}
	return fmt.Sprintf("huge(%d)", uint8(m))
}

// DataSegmentCreated reports the outcome of a [CreateDataSegment]. The
// server steps it right after performing the action. With Err set the
// server left nothing of the segment behind.
type DataSegmentCreated struct {
	Pub   PubID
	Index uint16
	Err   error
}

// ConnSegmentCreated reports the outcome of a [CreateConnSegment]; with Err
// set the server left nothing of the segment behind.
type ConnSegmentCreated struct {
	Connection ConnectionID
	Err        error
}

func (DataSegmentCreated) isEvent() {}
func (ConnSegmentCreated) isEvent() {}

// CreateDataSegment asks the server to create data segment Index of
// publisher Pub: Count chunks of ChunkSize bytes laid out as dataseg
// does, Bytes in all (the size the core's DataSegSize gave), on 2 MiB pages
// when Hugepages (required when Require, else with a fallback to normal
// pages, whose size is never larger). The server keeps a read-write and a
// read-only fd, then steps [DataSegmentCreated].
type CreateDataSegment struct {
	Pub       PubID
	Index     uint16
	ChunkSize uint32
	Count     uint32
	Bytes     uint64
	Hugepages bool
	Require   bool
}

// CreateConnSegment asks the server to create and format the segment of
// connection Connection (ringbuf's connection layout, Bytes in all), keep
// its fd, then step [ConnSegmentCreated].
type CreateConnSegment struct {
	Connection     ConnectionID
	Pub            PubID
	Sub            SubID
	Capacity       int // data ring: the subscriber's queue capacity
	ReturnCapacity int // return ring: a power of two ≥ Bound
	Bound          int // the publisher's cap on chunks outstanding on the connection
	MaxHeld        int
	Policy         Policy
	Bytes          uint64
}

// GrantSegments sends fds to the client on Conn: the segment of
// Connection when it is not 0 (read-write), then the data segments Data of
// publisher Pub, read-only when ReadOnly. The core decides every grant
// (access rules decide memory, design §3.2); the server only moves fds.
type GrantSegments struct {
	Conn       ConnID
	Connection ConnectionID
	Pub        PubID
	Data       []uint16
	ReadOnly   bool
}

// CloseDataSegments asks the server to close its fds of publisher Pub's
// data segments Indices (the publisher is gone; the memory lives as long
// as a client maps it).
type CloseDataSegments struct {
	Pub     PubID
	Indices []uint16
	// Topic is set when the publisher is gone (closed, or its client
	// departed): the server then reads the counters the publisher kept in
	// segment 0's header before it closes the fd (design §8.20). Empty
	// for a retired or abandoned segment.
	Topic string
}

// CloseConnSegment asks the server to close its fd of a connection's
// segment (the connection left the registry).
type CloseConnSegment struct{ Connection ConnectionID }

func (CreateDataSegment) isAction() {}
func (CreateConnSegment) isAction() {}
func (GrantSegments) isAction()     {}
func (CloseDataSegments) isAction() {}
func (CloseConnSegment) isAction()  {}

func (a CreateDataSegment) String() string {
	s := fmt.Sprintf("create-data-seg pub=%d index=%d chunk=%d count=%d bytes=%d", a.Pub, a.Index, a.ChunkSize, a.Count, a.Bytes)
	if a.Hugepages {
		s += " hugepages"
		if a.Require {
			s += " required"
		}
	}
	return s
}

func (a CreateConnSegment) String() string {
	return fmt.Sprintf("create-conn-seg conn=%d pub=%d sub=%d cap=%d return-cap=%d bound=%d max-held=%d policy=%v bytes=%d",
		a.Connection, a.Pub, a.Sub, a.Capacity, a.ReturnCapacity, a.Bound, a.MaxHeld, a.Policy, a.Bytes)
}

func (a GrantSegments) String() string {
	s := fmt.Sprintf("grant %v", a.Conn)
	if a.Connection != 0 {
		s += fmt.Sprintf(" conn-seg=%d", a.Connection)
	}
	if len(a.Data) > 0 {
		mode := "rw"
		if a.ReadOnly {
			mode = "ro"
		}
		s += fmt.Sprintf(" pub=%d data=%v %s", a.Pub, a.Data, mode)
	}
	return s
}

func (a CloseDataSegments) String() string {
	return fmt.Sprintf("close-data-segs pub=%d %v", a.Pub, a.Indices)
}

func (a CloseConnSegment) String() string { return fmt.Sprintf("close-conn-seg conn=%d", a.Connection) }
