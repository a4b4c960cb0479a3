// Package frame is the payload layout shared by the multiproc example
// programs (producer, processor, consumer) and the helpers they use to fill,
// transform and verify it.
//
// A frame is Size bytes: a 32-byte little-endian header followed by a body.
//
//	offset  size  field
//	0       4     magic ("PLXF")
//	4       4     pattern offset (seq % PatternPeriod)
//	8       8     producer sequence number, from 1
//	16      8     producer publish timestamp, unix nanoseconds
//	24      4     CRC-32C of the producer's body (set by the processor)
//	28      4     flags (FlagProcessed once transformed)
//	32      ...   body
//
// The producer's body is Pattern[off : off+len(body)]; the processor writes
// its bitwise inverse and the checksum of what it read.
package frame

import (
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"slices"
	"time"
)

// Layout constants.
const (
	Magic         = 0x46584c50 // "PLXF" little-endian
	HeaderSize    = 32
	MinSize       = 64
	PatternPeriod = 256
	FlagProcessed = 1
)

// Castagnoli is the CRC-32C table (hardware accelerated on amd64/arm64).
var Castagnoli = crc32.MakeTable(crc32.Castagnoli)

// Pattern is the body source: Pattern[off:off+n] for any off < PatternPeriod.
// It is read-only after NewPattern.
type Pattern []byte

// NewPattern returns a pattern long enough for frames of size bytes.
func NewPattern(size int) Pattern {
	p := make(Pattern, size+PatternPeriod)
	for i := range p {
		p[i] = byte(i*31 + i>>8 + 7)
	}
	return p
}

// Header is a decoded frame header.
type Header struct {
	Offset    uint32
	Seq       uint64
	Timestamp int64
	Checksum  uint32
	Flags     uint32
}

// Write fills b (a loaned chunk of at least MinSize bytes) as the producer's
// frame seq stamped with now.
func (p Pattern) Write(b []byte, seq uint64, now time.Time) {
	off := uint32(seq % PatternPeriod)
	copy(b[HeaderSize:], p[off:])
	PutHeader(b, Header{Offset: off, Seq: seq, Timestamp: now.UnixNano()})
}

// PutHeader writes h into b[:HeaderSize].
func PutHeader(b []byte, h Header) {
	binary.LittleEndian.PutUint32(b[0:], Magic)
	binary.LittleEndian.PutUint32(b[4:], h.Offset)
	binary.LittleEndian.PutUint64(b[8:], h.Seq)
	binary.LittleEndian.PutUint64(b[16:], uint64(h.Timestamp))
	binary.LittleEndian.PutUint32(b[24:], h.Checksum)
	binary.LittleEndian.PutUint32(b[28:], h.Flags)
}

// ErrBadFrame reports a frame that fails verification.
var ErrBadFrame = errors.New("bad frame")

// ReadHeader decodes and checks the header of b.
func ReadHeader(b []byte) (Header, error) {
	if len(b) < MinSize {
		return Header{}, fmt.Errorf("read header of %d-byte frame: %w", len(b), ErrBadFrame)
	}
	if m := binary.LittleEndian.Uint32(b[0:]); m != Magic {
		return Header{}, fmt.Errorf("read header: magic %#x: %w", m, ErrBadFrame)
	}
	h := Header{
		Offset:    binary.LittleEndian.Uint32(b[4:]),
		Seq:       binary.LittleEndian.Uint64(b[8:]),
		Timestamp: int64(binary.LittleEndian.Uint64(b[16:])),
		Checksum:  binary.LittleEndian.Uint32(b[24:]),
		Flags:     binary.LittleEndian.Uint32(b[28:]),
	}
	if h.Offset >= PatternPeriod {
		return Header{}, fmt.Errorf("read header: pattern offset %d: %w", h.Offset, ErrBadFrame)
	}
	return h, nil
}

// Process reads the producer frame in (in place, zero-copy) and writes the
// processed frame into out (len(out) == len(in)): the header with the body's
// CRC-32C and FlagProcessed, then the inverted body. It is the processor's
// only write.
func Process(out, in []byte) error {
	h, err := ReadHeader(in)
	if err != nil {
		return err
	}
	body := in[HeaderSize:]
	h.Checksum = crc32.Checksum(body, Castagnoli)
	h.Flags |= FlagProcessed
	PutHeader(out, h)
	invert(out[HeaderSize:], body)
	return nil
}

// invert writes ^src into dst, eight bytes at a time.
func invert(dst, src []byte) {
	n := len(src) &^ 7
	for i := 0; i < n; i += 8 {
		binary.LittleEndian.PutUint64(dst[i:], ^binary.LittleEndian.Uint64(src[i:]))
	}
	for i := n; i < len(src); i++ {
		dst[i] = ^src[i]
	}
}

// Verifier checks processed frames against the pattern. It keeps the
// expected checksums per pattern offset; it is not safe for concurrent use.
type Verifier struct {
	pat  Pattern
	size int
	sums [PatternPeriod]uint32
	inv  []byte // the inverted pattern
}

// NewVerifier returns a Verifier for frames of size bytes.
func NewVerifier(size int) *Verifier {
	v := &Verifier{pat: NewPattern(size), size: size}
	n := size - HeaderSize
	for off := range v.sums {
		v.sums[off] = crc32.Checksum(v.pat[off:off+n], Castagnoli)
	}
	v.inv = make([]byte, len(v.pat))
	invert(v.inv, v.pat)
	return v
}

// Verify checks a processed frame and returns its header.
func (v *Verifier) Verify(b []byte) (Header, error) {
	h, err := ReadHeader(b)
	if err != nil {
		return h, err
	}
	if len(b) != v.size {
		return h, fmt.Errorf("verify frame %d: %d bytes, want %d: %w", h.Seq, len(b), v.size, ErrBadFrame)
	}
	if h.Flags&FlagProcessed == 0 {
		return h, fmt.Errorf("verify frame %d: not processed: %w", h.Seq, ErrBadFrame)
	}
	if h.Offset != uint32(h.Seq%PatternPeriod) {
		return h, fmt.Errorf("verify frame %d: pattern offset %d: %w", h.Seq, h.Offset, ErrBadFrame)
	}
	if want := v.sums[h.Offset]; h.Checksum != want {
		return h, fmt.Errorf("verify frame %d: checksum %#x, want %#x: %w", h.Seq, h.Checksum, want, ErrBadFrame)
	}
	body := b[HeaderSize:]
	if !slices.Equal(body, v.inv[h.Offset:int(h.Offset)+len(body)]) {
		return h, fmt.Errorf("verify frame %d: body differs: %w", h.Seq, ErrBadFrame)
	}
	return h, nil
}
