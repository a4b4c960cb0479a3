package wire

import "fmt"

// Publisher memory (owned model, docs/design/memory-ownership.md §2, §6).
// Only a publisher's own process knows how many of its chunks are in use:
// the router creates and sizes its data segments but never reads memory a
// client can write. So the client runtime reports its publishers'
// accounting ([ReportMemory]), periodically while it changes, and the
// router shows the latest report next to what it knows itself (segments,
// sizes, page sizes) in [ListPublisherSegments].
//
// A report is the publisher's word: the router accepts reports only about
// the reporting connection's own live publishers and checks them against
// the segments it created (a publisher cannot claim more chunks than its
// segments hold), so a lying client can only misstate its own use.
//
// New types only (no existing encoding changed), so [Version] stays. The
// message counters of [PubMemory] (Published … Removed) were added within
// version 3 before its release, with the golden files regenerated, as the
// request/response fields were; [ReportMemory.Conns] (per-connection
// traffic) likewise within version 4, before its release.
const (
	// TypeReportMemory reports the accounting of some of the sender's own
	// publishers; answered by [Ack], or an [Error] naming the entry the
	// router refused (another client's publisher, more chunks than its
	// segments hold).
	TypeReportMemory Type = 50

	// TypeListPublisherSegments asks for a page of publisher data
	// segments; answered by [PublisherSegmentList].
	TypeListPublisherSegments Type = 76
	TypePublisherSegmentList  Type = 77
)

// MaxMemoryReports bounds the publishers of one [ReportMemory]; a client
// with more publishers sends several.
const MaxMemoryReports = 64

// MaxConnReports bounds the connections of one [ReportMemory]; a client
// with more sends several. A full message with both lists at their bounds
// fits [MaxMessageSize] (TestLargestMemoryFit).
const MaxConnReports = 256

// ReportMemory carries the accounting of the sender's publishers, each
// as of now, and the traffic of their connections. A report of a
// publisher or connection replaces its previous one.
type ReportMemory struct {
	Publishers []PubMemory
	// Conns are connections of the sender's live publishers (not
	// necessarily of those in Publishers), each as its publisher counts it.
	Conns []ConnTraffic
}

// ConnTraffic is one publisher–subscriber connection's traffic as its
// publisher counts it (only its process knows: the router never sees an
// owned ring move).
type ConnTraffic struct {
	ConnID    uint32 // the connection (ConnectionAdded.ConnID)
	Delivered uint64 // pushes into the subscriber's queue (history replays included)
	Dropped   uint64 // samples the subscriber missed: discard-oldest take-backs, full-queue drops, block-producer timeouts
	Returned  uint64 // chunks the subscriber gave back, as the publisher took them back
}

// PubMemory is one publisher's accounting of its own chunks, as its
// process keeps it (publisher.MemoryStats).
type PubMemory struct {
	PubID       uint32
	Segments    uint32 // data segments the publisher has mapped
	Chunks      uint32 // chunks in them
	Free        uint32 // free for loans
	InUse       uint32 // loaned, in history or delivered and not returned
	Loans       uint32 // loaned, not yet published or released
	History     uint32 // kept for late joiners
	Outstanding uint32 // delivered and not yet returned, summed over connections
	HighWater   uint32 // largest InUse so far
	Reclaimed   uint64 // taken back from removed connections
	BadReturns  uint64 // refs subscribers returned that they were never given
	// The publisher's message counters (publisher.Stats), also only known
	// in its process: the router never sees an owned ring move.
	Published   uint64 // samples published
	Delivered   uint64 // pushes into subscribers' queues, summed over connections
	Dropped     uint64 // samples subscribers missed (discard-oldest, block timeouts)
	Unconnected uint64 // samples published while no subscriber was connected
	Removed     uint64 // connections that ended (closed, dead or cut subscribers)
}

// ListPublisherSegments asks for a page of [PublisherSegStat]; answered by
// [PublisherSegmentList].
type ListPublisherSegments struct{ Offset uint32 }

// PublisherSegmentList is one page of [PublisherSegStat], sorted by
// publisher id and segment index.
type PublisherSegmentList struct {
	Segments []PublisherSegStat
	Next     uint32
}

// PublisherSegStat is one data segment of a publisher (owned model): what
// the router knows itself (the publisher, its segment's index, chunk size,
// count, bytes and pages) and the publisher's latest report ([PubMemory],
// the same on every segment of one publisher; zero with Reported false
// until it reported). Dead marks a tombstone: the publisher is gone, its
// subscribers may still map its segments, and its accounting died with it.
type PublisherSegStat struct {
	PubID     uint32
	Topic     string
	ClientID  uint16
	PID       int32
	Dead      bool
	Index     uint16
	ChunkSize uint32
	Count     uint32
	Bytes     uint64
	PageSize  uint32
	Hugepages bool
	Reported  bool
	AgeMs     uint64 // since the router received the publisher's report
	Mem       PubMemory
}

// MessageType implements [Message].
func (*ReportMemory) MessageType() Type { return TypeReportMemory }

// MessageType implements [Message].
func (*ListPublisherSegments) MessageType() Type { return TypeListPublisherSegments }

// MessageType implements [Message].
func (*PublisherSegmentList) MessageType() Type { return TypePublisherSegmentList }

// Validate implements [Message].
func (m *ReportMemory) Validate() error {
	t := m.MessageType()
	if len(m.Publishers) > MaxMemoryReports {
		return invalid(t, "Publishers", "has %d entries, limit %d", len(m.Publishers), MaxMemoryReports)
	}
	for i := range m.Publishers {
		f := fmt.Sprintf("Publishers[%d]", i)
		if err := m.Publishers[i].validate(t, f); err != nil {
			return err
		}
		for j := range i {
			if m.Publishers[j].PubID == m.Publishers[i].PubID {
				return invalid(t, f+".PubID", "%d repeats Publishers[%d]", m.Publishers[i].PubID, j)
			}
		}
	}
	if len(m.Conns) > MaxConnReports {
		return invalid(t, "Conns", "has %d entries, limit %d", len(m.Conns), MaxConnReports)
	}
	for i := range m.Conns {
		c := &m.Conns[i]
		f := fmt.Sprintf("Conns[%d]", i)
		if c.ConnID == 0 {
			return invalid(t, f+".ConnID", "is 0")
		}
		if c.Returned > c.Delivered {
			return invalid(t, f, "Returned %d exceeds Delivered %d", c.Returned, c.Delivered)
		}
		for j := range i {
			if m.Conns[j].ConnID == c.ConnID {
				return invalid(t, f+".ConnID", "%d repeats Conns[%d]", c.ConnID, j)
			}
		}
	}
	return nil
}

// validate checks what one report can be checked for alone: a publisher
// id, and counts that fit in the chunks.
func (p *PubMemory) validate(t Type, f string) error {
	if p.PubID == 0 {
		return invalid(t, f+".PubID", "is 0")
	}
	for _, c := range []struct {
		name string
		v    uint32
	}{{"Free", p.Free}, {"InUse", p.InUse}, {"Loans", p.Loans}, {"History", p.History}} {
		if c.v > p.Chunks {
			return invalid(t, f+"."+c.name, "%d exceeds Chunks %d", c.v, p.Chunks)
		}
	}
	if uint64(p.Free)+uint64(p.InUse) != uint64(p.Chunks) {
		return invalid(t, f, "Free %d + InUse %d is not Chunks %d", p.Free, p.InUse, p.Chunks)
	}
	if p.Loans > p.InUse || p.History > p.InUse {
		return invalid(t, f, "Loans %d or History %d exceeds InUse %d", p.Loans, p.History, p.InUse)
	}
	return nil
}

// Validate implements [Message].
func (*ListPublisherSegments) Validate() error { return nil }

// Validate implements [Message].
func (m *PublisherSegmentList) Validate() error {
	t := m.MessageType()
	if err := checkPage(t, "Segments", len(m.Segments)); err != nil {
		return err
	}
	for i := range m.Segments {
		s := &m.Segments[i]
		f := fmt.Sprintf("Segments[%d]", i)
		if err := ValidateTopic(s.Topic); err != nil && (!s.Dead || s.Topic != "") {
			return fmt.Errorf("%s.%s.Topic: %w", t, f, err)
		}
		if s.PID < 0 {
			return invalid(t, f+".PID", "%d negative", s.PID)
		}
		if s.ChunkSize == 0 || s.Count == 0 {
			return invalid(t, f, "has ChunkSize %d, Count %d; both must be > 0", s.ChunkSize, s.Count)
		}
		if s.PageSize != 0 && (!isPow2(uint64(s.PageSize)) || s.PageSize < MinPageSize || s.PageSize > MaxPageSize) {
			return invalid(t, f+".PageSize", "%d is not a power of two in [%d, %d]", s.PageSize, MinPageSize, MaxPageSize)
		}
		if s.Reported {
			if err := s.Mem.validate(t, f+".Mem"); err != nil {
				return err
			}
		}
	}
	return nil
}

func init() {
	typeNames[TypeReportMemory] = "ReportMemory"
	typeNames[TypeListPublisherSegments] = "ListPublisherSegments"
	typeNames[TypePublisherSegmentList] = "PublisherSegmentList"
}

// memoryReplyType is ReplyType for the publisher memory messages.
func memoryReplyType(t Type) (Type, bool) {
	switch t {
	case TypeReportMemory:
		return TypeAck, true
	case TypeListPublisherSegments:
		return TypePublisherSegmentList, true
	}
	return 0, false
}

// newMemory is New for the publisher memory messages.
func newMemory(t Type) Message {
	switch t {
	case TypeReportMemory:
		return new(ReportMemory)
	case TypeListPublisherSegments:
		return new(ListPublisherSegments)
	case TypePublisherSegmentList:
		return new(PublisherSegmentList)
	}
	return nil
}
