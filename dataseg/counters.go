package dataseg

import (
	"encoding/binary"
	"fmt"
	"io"

	"github.com/parallax-ipc/parallax"
)

// Publisher counters in the segment header (design
// docs/design/memory-ownership.md §8.20). The owning publisher's engine
// keeps its cumulative message counters in bytes 64..95 of the header of
// its first data segment (index 0), with plain stores as it publishes: one
// writer, a cache line of its own that nobody else reads on the data path.
// The router, which keeps the segment's fd, reads them with pread when the
// publisher is gone, so what a killed publisher counted after its last
// report (wire.ReportMemory) still reaches the topic's counters.
//
// They are the publisher's own word, as its reports are: [Attach] does not
// check them, subscribers (which map the segment read-only) ignore them,
// and the router only ever lets them raise what the publisher already
// reported (roudi/server_segcounters.go).

// Byte offsets of the counters in the segment header (all little-endian
// u64). Bytes 96..127 stay reserved (0).
const (
	// CountersOffset is where the counters start in the segment header.
	CountersOffset = 64
	// CountersSize is the bytes of the counters.
	CountersSize = 32

	offPublished   = CountersOffset      // u64 samples published
	offDelivered   = CountersOffset + 8  // u64 pushes into subscribers' queues, all connections
	offDropped     = CountersOffset + 16 // u64 samples discarded or timed out on a connection
	offUnconnected = CountersOffset + 24 // u64 samples published with no connection to deliver to
	offReserved2   = CountersOffset + CountersSize
)

// Counters are a publisher's cumulative message counters as its engine
// keeps them in its first data segment's header.
type Counters struct {
	Published   uint64 // samples published
	Delivered   uint64 // pushes into subscribers' queues, summed over connections
	Dropped     uint64 // samples subscribers missed (discard-oldest, block timeouts)
	Unconnected uint64 // samples published while no connection was live
}

// SetCounters stores the publisher's counters in s's header: four plain
// little-endian stores, no atomics (one writer; the router reads them only
// once the publisher is gone). It panics if s is read-only.
func (s *Segment) SetCounters(published, delivered, dropped, unconnected uint64) {
	h := s.counters[:CountersSize:CountersSize] // panics on a read-only segment (nil)
	le := binary.LittleEndian
	le.PutUint64(h[offPublished-CountersOffset:], published)
	le.PutUint64(h[offDelivered-CountersOffset:], delivered)
	le.PutUint64(h[offDropped-CountersOffset:], dropped)
	le.PutUint64(h[offUnconnected-CountersOffset:], unconnected)
}

// Counters returns the counters in s's header.
func (s *Segment) Counters() Counters {
	if s.counters == nil {
		return Counters{}
	}
	return decodeCounters(s.counters)
}

// ReadCounters reads the counters from the header of a data segment's file
// with one ReadAt (pread) of [CountersSize] bytes at [CountersOffset],
// without mapping it: for the router, which keeps the fd of every segment
// it created. Errors wrap [parallax.ErrCorrupt] for a short read.
func ReadCounters(f io.ReaderAt) (Counters, error) {
	var b [CountersSize]byte
	if n, err := f.ReadAt(b[:], CountersOffset); n < len(b) {
		if err == nil || err == io.EOF {
			err = parallax.ErrCorrupt
		}
		return Counters{}, fmt.Errorf("read publisher counters from data segment header: %d of %d bytes: %w", n, len(b), err)
	}
	return decodeCounters(b[:]), nil
}

func decodeCounters(b []byte) Counters {
	le := binary.LittleEndian
	return Counters{
		Published:   le.Uint64(b[offPublished-CountersOffset:]),
		Delivered:   le.Uint64(b[offDelivered-CountersOffset:]),
		Dropped:     le.Uint64(b[offDropped-CountersOffset:]),
		Unconnected: le.Uint64(b[offUnconnected-CountersOffset:]),
	}
}

// Max returns c with each counter raised to at least floor's: what a
// reader that must never go backwards makes of counters read after floor.
// A counter at math.MaxUint64 stays there.
func (c Counters) Max(floor Counters) Counters {
	return Counters{
		Published:   max(c.Published, floor.Published),
		Delivered:   max(c.Delivered, floor.Delivered),
		Dropped:     max(c.Dropped, floor.Dropped),
		Unconnected: max(c.Unconnected, floor.Unconnected),
	}
}
