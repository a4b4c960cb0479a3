package core

import (
	"errors"
	"fmt"
	"strings"

	"github.com/parallax-ipc/parallax/dataseg"
	"github.com/parallax-ipc/parallax/ringbuf"
)

// Owned memory in the scripts (testdata/memory_*.txt):
//
//	config model=owned max_payload=B max_loans=N max_held=N budget=B huge=auto|never|always
//	       huge_min=B max_pub_bytes=B max_shared=B max_segs=N
//	pub ... [max_payload=B] [loans=N] [expect=N]     sub ... [max_held=N]
//	dataseg pub=P index=I [err=text_with_underscores] (the server's report of a create-data-seg)
//	connseg conn=C [err=text]                         (the server's report of a create-conn-seg)
//	memory                                            (prints the owned memory accounting)

// testSizes are the real segment sizes: dataseg's and ringbuf's layouts.
var testSizes = SegmentSizes{
	Data: func(chunk, count uint32, huge bool) uint64 {
		page := uint32(4096)
		if huge {
			page = 2 << 20
		}
		return uint64(dataseg.Size(dataseg.Desc{PubID: 1, ChunkSize: chunk, Count: count, PageSize: page}))
	},
	Conn: func(capacity, ret int) uint64 { return uint64(ringbuf.ConnSize(capacity, ret)) },
}

// memoryConfig applies an owned-memory config key; it reports whether k is
// one.
func (s *scriptState) memoryConfig(k, v string, num func(string, int) int) bool {
	m := &s.cfg.Memory
	switch k {
	case "max_payload":
		m.DefaultMaxPayload = uint32(num(k, 0))
	case "max_loans":
		m.DefaultMaxLoans = num(k, 0)
	case "max_held":
		m.DefaultMaxHeld = num(k, 0)
	case "budget":
		m.ConnectionBudget = uint64(num(k, 0))
	case "huge":
		m.Hugepages = map[string]HugeMode{"auto": HugeAuto, "never": HugeNever, "always": HugeAlways}[v]
	case "huge_min":
		m.HugepageMinBytes = uint64(num(k, 0))
	case "max_pub_bytes":
		m.MaxPublisherBytes = uint64(num(k, 0))
	case "max_shared":
		m.MaxSharedBytes = uint64(num(k, 0))
	case "max_segs":
		m.MaxSegmentsPerPublisher = num(k, 0)
	default:
		return false
	}
	return true
}

// memoryCommand builds the event of an owned-memory report, or prints the
// accounting (nil event); ok is false for another command.
func (s *scriptState) memoryCommand(cmd string, kv map[string]string, num func(string, int) int) (Event, []string, bool) {
	var err error
	if msg, ok := kv["err"]; ok {
		err = errors.New(strings.ReplaceAll(msg, "_", " "))
	}
	switch cmd {
	case "dataseg":
		return DataSegmentCreated{Pub: PubID(num("pub", 0)), Index: uint16(num("index", 0)), Err: err}, nil, true
	case "connseg":
		return ConnSegmentCreated{Connection: ConnectionID(num("conn", 0)), Err: err}, nil, true
	case "memory":
		return nil, strings.Split(s.router().Memory().String(), "\n"), true
	}
	return nil, nil, false
}

func (m MemoryStats) String() string {
	var b strings.Builder
	fmt.Fprintf(&b, "memory shared=%d", m.SharedBytes)
	for _, p := range m.Publishers {
		fmt.Fprintf(&b, "\n  pub %d chunk=%d chunks=%d bytes=%d", p.Pub, p.ChunkSize, p.Chunks, p.Bytes)
		if p.Dead {
			b.WriteString(" tombstone")
		}
		for _, sg := range p.Segments {
			st := "creating"
			if sg.Live {
				st = "live"
			}
			fmt.Fprintf(&b, " [%d: %dx bytes=%d %s", sg.Index, sg.Count, sg.Bytes, st)
			if sg.ChunkSize != p.ChunkSize {
				fmt.Fprintf(&b, " chunk=%d", sg.ChunkSize)
			}
			if sg.Huge {
				b.WriteString(" huge")
			}
			b.WriteString("]")
		}
	}
	for _, c := range m.Connections {
		fmt.Fprintf(&b, "\n  conn %d pub=%d %v bound=%d bytes=%d", c.Connection, c.Pub, c.State, c.Bound, c.Bytes)
		switch {
		case c.PubWait && c.SubWait:
			b.WriteString(" waits=pub,sub")
		case c.PubWait:
			b.WriteString(" waits=pub")
		case c.SubWait:
			b.WriteString(" waits=sub")
		}
		if c.AwaitPID != 0 {
			fmt.Fprintf(&b, " await-pid=%d", c.AwaitPID)
		}
	}
	return b.String()
}

// checkMemory verifies the owned memory accounting: the domain total is
// the sum of every counted segment, each publisher's the sum of its
// segments, and each publisher's connection count and sum of bounds are
// its records'.
func (r *Router) checkMemory() error {
	var total uint64
	conns := map[*pubMem]int{}
	bounds := map[*pubMem]uint64{}
	for id, cs := range r.mem.conns {
		if cs.id != id || r.mem.pubs[cs.pub.id] != cs.pub {
			return fmt.Errorf("connection record %d names publisher %d not recorded", id, cs.pub.id)
		}
		if _, linked := r.links[id]; linked == cs.unlinked {
			return fmt.Errorf("connection record %d: unlinked=%v but linked=%v", id, cs.unlinked, linked)
		}
		if err := cs.checkState(); err != nil {
			return fmt.Errorf("connection record %d: %w", id, err)
		}
		total += cs.bytes
		conns[cs.pub]++
		bounds[cs.pub] += uint64(cs.bound)
	}
	check := func(m *pubMem) error {
		var bytes, chunks uint64
		for _, sg := range m.segs {
			if sg.state != segFailed {
				bytes += sg.bytes
				if sg.chunk == m.chunkSize {
					chunks += uint64(sg.count)
				}
			}
		}
		if bytes != m.bytes || chunks != m.chunks {
			return fmt.Errorf("publisher %d counts %d bytes %d chunks, its segments %d bytes %d chunks", m.id, m.bytes, m.chunks, bytes, chunks)
		}
		if conns[m] != m.conns {
			return fmt.Errorf("publisher %d counts %d connections, records name it %d times", m.id, m.conns, conns[m])
		}
		if bounds[m] != m.connBound {
			return fmt.Errorf("publisher %d sums bounds %d, its records %d", m.id, m.connBound, bounds[m])
		}
		total += bytes
		return nil
	}
	for id, m := range r.mem.pubs {
		if m.id != id {
			return fmt.Errorf("publisher memory %d filed under %d", m.id, id)
		}
		if _, live := r.pubs[id]; live == m.dead {
			return fmt.Errorf("publisher memory %d: dead=%v but registered=%v", id, m.dead, live)
		}
		if err := check(m); err != nil {
			return err
		}
	}
	for id, pp := range r.mem.pending {
		if pp.mem.id != id || r.mem.pubs[id] != nil {
			return fmt.Errorf("pending publisher %d is also recorded", id)
		}
		if err := check(pp.mem); err != nil {
			return err
		}
	}
	for k := range r.mem.grows {
		m := r.mem.pubs[k.pub]
		if m == nil || int(k.index) >= len(m.segs) || m.segs[k.index].state != segCreating {
			return fmt.Errorf("GrowData waits for segment %d of publisher %d, which is not being created", k.index, k.pub)
		}
	}
	if total != r.mem.shared {
		return fmt.Errorf("shared bytes %d, segments add up to %d", r.mem.shared, total)
	}
	return nil
}
