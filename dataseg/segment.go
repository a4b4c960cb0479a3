package dataseg

import (
	"encoding/binary"
	"fmt"

	"github.com/parallax-ipc/parallax"
)

// A Segment is one mapped data segment: the chunk-header table and the
// payload area of a publisher, laid out by [Format] and validated by
// [Attach].
//
// Every field is computed from the [Desc] when the Segment is made and never
// re-read from shared memory, so a peer that rewrites the segment header
// later cannot change bounds. A Segment does not own its memory: the caller
// maps and unmaps it, and must not unmap while the Segment or any slice it
// returned is in use.
//
// Use Format or Attach; the zero value has no chunks ([Segment.View] rejects
// every slot). A Segment is immutable and safe for concurrent use; the
// chunks it hands out follow the ownership rules of [Segment.Chunk],
// [Segment.SetMeta] and [Segment.View].
type Segment struct {
	desc      Desc
	readOnly  bool
	count     uint32
	chunkSize int
	headers   []byte // the chunk-header table, Count*ChunkHeaderSize bytes
	counters  []byte // the publisher's counters in the header (counters.go); nil when read-only
	payload   []byte // the payload area, Count*ChunkSize bytes
}

// Format lays out a data segment in mem as d describes and returns it,
// writable. It is run once by the router on a freshly created segment.
//
// Format writes only the 128-byte segment header: mem must otherwise be
// zero-filled, as a new memfd is, and Format does not touch (and so does not
// fault in) the chunk-header table or payload. mem must be at least Size(d)
// bytes and should be page aligned, as an mmap is; bytes past Size(d) are
// not used. Errors wrap [ErrDesc] for an invalid d and [parallax.ErrCorrupt]
// if mem is too small.
func Format(mem []byte, d Desc) (*Segment, error) {
	l, err := d.layout()
	if err != nil {
		return nil, fmt.Errorf("format data segment: %w", err)
	}
	if len(mem) < l.size {
		return nil, fmt.Errorf("format data segment %d of publisher %d: memory is %d bytes, layout needs %d: %w",
			d.Index, d.PubID, len(mem), l.size, parallax.ErrCorrupt)
	}
	putHeader(mem[:HeaderSize], d, l)
	return newSegment(mem, d, l, false), nil
}

// FormatHeader writes into h (at least [HeaderSize] bytes) the header
// [Format] would write for d, and returns [Size](d): for a creator that
// writes the header into a new, zero-filled file (pwrite) rather than
// mapping the segment. Errors wrap [ErrDesc] for an invalid d and
// [parallax.ErrCorrupt] if h is too small.
func FormatHeader(h []byte, d Desc) (size int, err error) {
	l, err := d.layout()
	if err != nil {
		return 0, fmt.Errorf("format data segment header: %w", err)
	}
	if len(h) < HeaderSize {
		return 0, fmt.Errorf("format data segment header: %d bytes, need %d: %w", len(h), HeaderSize, parallax.ErrCorrupt)
	}
	putHeader(h[:HeaderSize], d, l)
	return l.size, nil
}

// putHeader clears h (HeaderSize bytes) and writes d's header fields.
func putHeader(h []byte, d Desc, l layout) {
	clear(h)
	binary.LittleEndian.PutUint64(h[offMagic:], Magic)
	binary.LittleEndian.PutUint32(h[offVersion:], LayoutVersion)
	binary.LittleEndian.PutUint16(h[offIndex:], d.Index)
	binary.LittleEndian.PutUint16(h[offFlags:], d.Flags)
	binary.LittleEndian.PutUint32(h[offPubID:], d.PubID)
	binary.LittleEndian.PutUint32(h[offChunkSize:], d.ChunkSize)
	binary.LittleEndian.PutUint32(h[offCount:], d.Count)
	binary.LittleEndian.PutUint32(h[offStride:], ChunkHeaderSize)
	binary.LittleEndian.PutUint64(h[offHeadersOffset:], HeadersOffset)
	binary.LittleEndian.PutUint64(h[offPayloadOffset:], uint64(l.payloadOff))
	binary.LittleEndian.PutUint64(h[offSegmentSize:], uint64(l.size))
	binary.LittleEndian.PutUint32(h[offPageSize:], d.PageSize)
}

// Attach validates the data segment in mem against d, the descriptor the
// router sent, and returns it. readOnly says how the caller mapped mem:
// subscribers map read-only and get a Segment whose [Segment.Chunk] and
// [Segment.SetMeta] panic; the owning publisher maps read-write.
//
// Attach recomputes every offset from d and requires the in-segment header
// to match it field by field (magic, version, index, flags, publisher id,
// chunk size, count, stride, offsets, size, page size, reserved bytes 0;
// the publisher's counters, bytes 64..95, are not checked).
// It reads the header once and never again. Errors wrap [ErrDesc] for an
// invalid d and [parallax.ErrCorrupt] for a short mem or any mismatch, and
// name the first field that differs. Attach writes nothing.
func Attach(mem []byte, d Desc, readOnly bool) (*Segment, error) {
	l, err := d.layout()
	if err != nil {
		return nil, fmt.Errorf("attach data segment: %w", err)
	}
	if len(mem) < l.size {
		return nil, fmt.Errorf("attach data segment %d of publisher %d: memory is %d bytes, layout needs %d: %w",
			d.Index, d.PubID, len(mem), l.size, parallax.ErrCorrupt)
	}
	var h [HeaderSize]byte
	copy(h[:], mem) // one read of the header; every check below uses the copy
	le := binary.LittleEndian
	checks := [...]struct {
		field     string
		got, want uint64
	}{
		{"magic", le.Uint64(h[offMagic:]), Magic},
		{"layout version", uint64(le.Uint32(h[offVersion:])), uint64(LayoutVersion)},
		{"segment index", uint64(le.Uint16(h[offIndex:])), uint64(d.Index)},
		{"flags", uint64(le.Uint16(h[offFlags:])), uint64(d.Flags)},
		{"publisher id", uint64(le.Uint32(h[offPubID:])), uint64(d.PubID)},
		{"chunk size", uint64(le.Uint32(h[offChunkSize:])), uint64(d.ChunkSize)},
		{"count", uint64(le.Uint32(h[offCount:])), uint64(d.Count)},
		{"header stride", uint64(le.Uint32(h[offStride:])), ChunkHeaderSize},
		{"page size", uint64(le.Uint32(h[offPageSize:])), uint64(d.PageSize)},
		{"headers offset", le.Uint64(h[offHeadersOffset:]), HeadersOffset},
		{"payload offset", le.Uint64(h[offPayloadOffset:]), uint64(l.payloadOff)},
		{"segment size", le.Uint64(h[offSegmentSize:]), uint64(l.size)},
	}
	for _, c := range checks {
		if c.got != c.want {
			return nil, fmt.Errorf("attach data segment %d of publisher %d: header %s is %#x, descriptor says %#x: %w",
				d.Index, d.PubID, c.field, c.got, c.want, parallax.ErrCorrupt)
		}
	}
	for i := offReserved; i < HeaderSize; i++ {
		if i >= CountersOffset && i < offReserved2 {
			continue // the publisher's counters (counters.go): its own word, not checked
		}
		if h[i] != 0 {
			return nil, fmt.Errorf("attach data segment %d of publisher %d: reserved header byte %d is %#x, want 0: %w",
				d.Index, d.PubID, i, h[i], parallax.ErrCorrupt)
		}
	}
	return newSegment(mem, d, l, readOnly), nil
}

func newSegment(mem []byte, d Desc, l layout, readOnly bool) *Segment {
	hdrEnd := HeadersOffset + int(d.Count)*ChunkHeaderSize
	payEnd := l.payloadOff + int(d.Count)*int(d.ChunkSize)
	var counters []byte
	if !readOnly {
		counters = mem[CountersOffset : CountersOffset+CountersSize : CountersOffset+CountersSize]
	}
	return &Segment{
		counters:  counters,
		desc:      d,
		readOnly:  readOnly,
		count:     d.Count,
		chunkSize: int(d.ChunkSize),
		headers:   mem[HeadersOffset:hdrEnd:hdrEnd],
		payload:   mem[l.payloadOff:payEnd:payEnd],
	}
}

// Desc returns the descriptor s was made from.
func (s *Segment) Desc() Desc { return s.desc }

// Count returns the number of chunks in s (cached from the Desc).
func (s *Segment) Count() uint32 { return s.count }

// ChunkSize returns the size of every chunk in s (cached from the Desc).
func (s *Segment) ChunkSize() int { return s.chunkSize }

// ReadOnly reports whether s was attached read-only.
func (s *Segment) ReadOnly() bool { return s.readOnly }

// Chunk returns the whole payload of slot, ChunkSize bytes, for the owning
// publisher to fill. It aliases shared memory: the owner may write it only
// while it holds the slot as a loan, before publishing the ref (see the
// package doc's ordering rules). The slice's capacity ends at the chunk, so
// append cannot spill into the next one.
//
// Chunk panics if slot >= Count or s is read-only: the owner passes only
// slots its own allocator handed out, and a write through a read-only
// mapping would crash the process less legibly.
func (s *Segment) Chunk(slot uint32) []byte {
	s.mustOwn(slot, "Chunk")
	off := int(slot) * s.chunkSize
	end := off + s.chunkSize
	return s.payload[off:end:end]
}

func (s *Segment) mustOwn(slot uint32, op string) {
	if s.readOnly {
		panic(fmt.Sprintf("dataseg: %s on read-only segment %d of publisher %d", op, s.desc.Index, s.desc.PubID))
	}
	if slot >= s.count {
		panic(fmt.Sprintf("dataseg: %s(slot %d) out of range (count %d)", op, slot, s.count))
	}
}
