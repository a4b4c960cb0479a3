package dataseg

import (
	"encoding/binary"
	"fmt"

	"github.com/parallax-ipc/parallax"
)

// Meta is the metadata of one chunk: the 64-byte chunk header, decoded. The
// owning publisher writes it with [Segment.SetMeta] before publishing; a
// reader gets a private copy from [Segment.View]. Meta is a plain value.
type Meta struct {
	Length   uint32 // payload bytes in use, ≤ the chunk size
	Flags    uint32 // buffer flags (issue 14); bit 31 is [FlagMetaSet]
	Seq      uint64 // publisher sequence number, from 1
	Stamp    int64  // publish time, unix ns
	PTS      int64  // presentation time stamp (buffer.Meta.PTS; the NoTime sentinel is allowed)
	DTS      int64  // decode time stamp (buffer.Meta.DTS)
	Duration int64  // buffer.Meta.Duration
	Offset   uint64 // buffer.Meta.Offset
	UserSeq  uint64 // the producer's own sequence (buffer.Meta.Seq); Seq stays the publisher's
}

// FlagMetaSet in [Meta.Flags] marks a chunk whose producer set the media
// fields (PTS, DTS, Duration, Offset, UserSeq and the other flags), as
// publisher.Chunk.SetMeta does; without it a reader treats them as unset.
// It is the one bit of Flags that is not a buffer flag
// (parallax.MetaFlagsReserved).
const FlagMetaSet = parallax.MetaFlagsReserved

// SetMeta writes m into slot's chunk header with plain stores. Like
// [Segment.Chunk] it is for the owning publisher only, while it holds slot
// as a loan: the ring push that publishes the ref orders these stores
// before any reader's [Segment.View].
//
// SetMeta panics if slot >= Count, if s is read-only, or if m.Length exceeds
// the chunk size (readers would reject the chunk).
func (s *Segment) SetMeta(slot uint32, m Meta) {
	s.mustOwn(slot, "SetMeta")
	if int64(m.Length) > int64(s.chunkSize) {
		panic(fmt.Sprintf("dataseg: SetMeta(slot %d) length %d exceeds chunk size %d", slot, m.Length, s.chunkSize))
	}
	off := int(slot) * ChunkHeaderSize
	h := s.headers[off : off+ChunkHeaderSize]
	le := binary.LittleEndian
	le.PutUint32(h[metaLength:], m.Length)
	le.PutUint32(h[metaFlags:], m.Flags)
	le.PutUint64(h[metaSeq:], m.Seq)
	le.PutUint64(h[metaStamp:], uint64(m.Stamp))
	le.PutUint64(h[metaPTS:], uint64(m.PTS))
	le.PutUint64(h[metaDTS:], uint64(m.DTS))
	le.PutUint64(h[metaDuration:], uint64(m.Duration))
	le.PutUint64(h[metaOffset:], m.Offset)
	le.PutUint64(h[metaUserSeq:], m.UserSeq)
}

// SetMedia writes the media fields of m (Flags, PTS, DTS, Duration, Offset,
// UserSeq) into slot's chunk header, for the owning publisher while it
// holds slot as a loan; [Segment.SetPublished] adds the rest at publish.
// It panics if slot >= Count or s is read-only.
func (s *Segment) SetMedia(slot uint32, m Meta) {
	s.mustOwn(slot, "SetMedia")
	off := int(slot) * ChunkHeaderSize
	h := s.headers[off : off+ChunkHeaderSize]
	le := binary.LittleEndian
	le.PutUint32(h[metaFlags:], m.Flags)
	le.PutUint64(h[metaPTS:], uint64(m.PTS))
	le.PutUint64(h[metaDTS:], uint64(m.DTS))
	le.PutUint64(h[metaDuration:], uint64(m.Duration))
	le.PutUint64(h[metaOffset:], m.Offset)
	le.PutUint64(h[metaUserSeq:], m.UserSeq)
}

// SetPublished writes the fields a publish decides (Length, Seq, Stamp)
// into slot's chunk header, keeping the media fields [Segment.SetMedia]
// wrote during the loan. Same rules and panics as [Segment.SetMeta].
func (s *Segment) SetPublished(slot uint32, length uint32, seq uint64, stamp int64) {
	s.mustOwn(slot, "SetPublished")
	if int64(length) > int64(s.chunkSize) {
		panic(fmt.Sprintf("dataseg: SetPublished(slot %d) length %d exceeds chunk size %d", slot, length, s.chunkSize))
	}
	off := int(slot) * ChunkHeaderSize
	h := s.headers[off : off+ChunkHeaderSize]
	le := binary.LittleEndian
	le.PutUint32(h[metaLength:], length)
	le.PutUint64(h[metaSeq:], seq)
	le.PutUint64(h[metaStamp:], uint64(stamp))
}

// View returns the payload in use of slot and a private copy of its header.
// It is the reader's path: the slot comes from a ref that a peer may have
// forged, and the header from memory the publisher can rewrite at any time.
//
// View checks slot < Count (cached), reads the 64-byte header exactly once
// into the returned Meta, and rejects a length above the chunk size. The
// returned slice is payload[0:Length] of that chunk with its capacity
// ending there too; it aliases shared memory and is only valid until the
// reader hands the ref back to the owner. Its contents may still change if
// the publisher misbehaves, but never its bounds.
//
// Errors wrap [ErrSlot] and [parallax.ErrInvalidRef] for a slot out of
// range, and [ErrLength] and [parallax.ErrCorrupt] for a bad length. View
// is safe for concurrent use, allocates nothing on success and never
// panics.
func (s *Segment) View(slot uint32) ([]byte, Meta, error) {
	var m Meta
	b, err := s.ViewInto(slot, &m)
	return b, m, err
}

// ViewInto is [Segment.View] that decodes the header into *m instead of
// returning it: a caller that keeps the Meta in a larger value (a sample)
// decodes it in place, with no 64-byte copy of freshly stored fields (a
// copy that stalls on store forwarding). On error *m is zeroed.
func (s *Segment) ViewInto(slot uint32, m *Meta) ([]byte, error) {
	if slot >= s.count {
		*m = Meta{}
		return nil, fmt.Errorf("view slot %d of data segment %d (count %d): %w: %w",
			slot, s.desc.Index, s.count, ErrSlot, parallax.ErrInvalidRef)
	}
	off := int(slot) * ChunkHeaderSize
	decodeMeta(s.headers[off:off+ChunkHeaderSize], m)
	if int64(m.Length) > int64(s.chunkSize) {
		n := m.Length
		*m = Meta{}
		return nil, fmt.Errorf("view slot %d of data segment %d: length %d, chunk size %d: %w: %w",
			slot, s.desc.Index, n, s.chunkSize, ErrLength, parallax.ErrCorrupt)
	}
	p := int(slot) * s.chunkSize
	end := p + int(m.Length)
	return s.payload[p:end:end], nil
}

// decodeMeta reads a chunk header into *m. h is read once, field by field;
// the caller validates the result, never h again.
func decodeMeta(h []byte, m *Meta) {
	h = h[:ChunkHeaderSize]
	le := binary.LittleEndian
	m.Length = le.Uint32(h[metaLength:])
	m.Flags = le.Uint32(h[metaFlags:])
	m.Seq = le.Uint64(h[metaSeq:])
	m.Stamp = int64(le.Uint64(h[metaStamp:]))
	m.PTS = int64(le.Uint64(h[metaPTS:]))
	m.DTS = int64(le.Uint64(h[metaDTS:]))
	m.Duration = int64(le.Uint64(h[metaDuration:]))
	m.Offset = le.Uint64(h[metaOffset:])
	m.UserSeq = le.Uint64(h[metaUserSeq:])
}
