package gateway

import (
	"bytes"
	"encoding/binary"
	"fmt"
)

// The frame: every NATS message a gateway publishes is a binary header
// followed by the payload (or, for a split message, by one part of it; for
// a batch, by several messages); no NATS headers are used. Little-endian,
// version 1:
//
//	offset size field
//	0      2    magic "PX"
//	2      1    version (1)
//	3      1    flags: bit 0 = part of a split message (the part block
//	            follows), bit 1 = batch (records follow); at most one of
//	            them; the other bits are 0
//	4      1    G, length of the exporting gateway's id (1..255)
//	5      1    T, length of the payload type name (0..255)
//	6      2    reserved, 0
//	8      8    origin sequence number (the local publisher's, from 1)
//	16     8    origin timestamp, unix nanoseconds (signed)
//	24     4    origin publisher id in the exporting domain
//	28     4    type size
//	32     4    type align
//	36     24   part block, only when flags bit 0 is set:
//	            36 8 total message length in bytes
//	            44 4 part index, from 0
//	            48 4 part count (2..)
//	            52 8 byte offset of this part in the message
//	then        G   gateway id
//	then        T   type name
//	then            payload bytes (all of them, or this part's)
//
// A batch (flags bit 1) carries several whole messages of one gateway and
// type in one NATS message: an exporter that finds more than one sample
// queued publishes them together, saving NATS's per-message work (server
// routing, the client's lock, allocation and hand-off) for all but one. In
// its header bytes 8..11 hold the record count N (1..) as a uint32 and
// bytes 12..27 are 0 (the origin is per record); after the gateway id and
// type name come N records, each
//
//	0      8    origin sequence number
//	8      8    origin timestamp, unix nanoseconds (signed)
//	16     4    origin publisher id
//	20     4    L, payload length
//	24     L    payload bytes
//
// filling the rest of the message exactly. A batch is checked whole before
// any of its messages is used: a malformed one is refused as a whole.
// Importers before batches refuse them (flags not zero); exporters send
// none with [Options].Unbatched.
//
// A receiver refuses a frame whose magic, version, flags, reserved bytes or
// lengths are wrong ([ErrNotParallax]), so a foreign message on a Parallax
// subject is counted as refused and never published locally. A
// non-Parallax consumer of a bridged subject strips the 36+G+T (or
// 60+G+T) bytes in front of the payload, or reads batches with
// [DecodeMessages].
const (
	frameVersion  = 1
	flagPart      = 1
	flagBatch     = 2
	fixedLen      = 36
	partBlockLen  = 24
	recordLen     = 24
	maxFrameIDLen = 255
)

var frameMagic = [2]byte{'P', 'X'}

// Meta is the Parallax header of a bridged sample (see [DecodeMessage]).
type Meta struct {
	Seq       uint64
	Timestamp int64 // unix nanoseconds
	Type      Type
	Publisher uint32 // origin publisher id in the exporting domain
	Gateway   string // exporting gateway id
}

// frame is a decoded header. gateway, typeName and payload alias the
// message bytes: decoding allocates nothing.
type frame struct {
	seq, total, offset  uint64
	ts                  int64
	publisher           uint32
	typeSize, typeAlign uint32
	part, count         uint32 // count: parts of a split message, records of a batch
	split, batch        bool
	gateway, typeName   []byte
	payload             []byte
}

// AppendMessage appends a whole (unsplit) message carrying m and payload,
// in the frame format above, to dst. It is how a program other than a
// gateway publishes to a bridged subject.
func AppendMessage(dst []byte, m Meta, payload []byte) ([]byte, error) {
	if m.Gateway == "" || len(m.Gateway) > maxFrameIDLen || len(m.Type.Name) > maxFrameIDLen {
		return dst, fmt.Errorf("encode message: gateway id of %d bytes or type name of %d bytes (want 1..255 and 0..255): %w",
			len(m.Gateway), len(m.Type.Name), ErrInvalidArgument)
	}
	dst = appendPrefix(dst, m.Gateway, m.Type, false)
	setOrigin(dst[len(dst)-headerLen(m.Gateway, m.Type, false):], m.Seq, m.Timestamp, m.Publisher)
	return append(dst, payload...), nil
}

// DecodeMessage reads the header of a message a gateway published and
// returns it with the payload (aliasing data). Split-message parts and
// malformed headers are errors wrapping [ErrNotParallax].
func DecodeMessage(data []byte) (Meta, []byte, error) {
	var f frame
	if err := parseFrame(data, &f); err != nil {
		return Meta{}, nil, err
	}
	if f.split {
		return Meta{}, nil, fmt.Errorf("decode message: part %d of %d of a split message: %w", f.part, f.count, ErrNotParallax)
	}
	if f.batch {
		return Meta{}, nil, fmt.Errorf("decode message: batch of %d messages (read it with DecodeMessages): %w", f.count, ErrNotParallax)
	}
	return f.meta(), f.payload, nil
}

// DecodeMessages reads a whole message or a batch that a gateway
// published and calls fn with each message's header and payload (aliasing
// data), in order. A batch is validated whole before fn is first called.
// Split-message parts and malformed headers are errors wrapping
// [ErrNotParallax].
func DecodeMessages(data []byte, fn func(m Meta, payload []byte)) error {
	var f frame
	if err := parseFrame(data, &f); err != nil {
		return err
	}
	if f.split {
		return fmt.Errorf("decode messages: part %d of %d of a split message: %w", f.part, f.count, ErrNotParallax)
	}
	if !f.batch {
		fn(f.meta(), f.payload)
		return nil
	}
	m := f.meta()
	for rest := f.payload; len(rest) > 0; {
		var payload []byte
		m.Seq, m.Timestamp, m.Publisher, payload, rest = nextRecord(rest)
		fn(m, payload)
	}
	return nil
}

func (f *frame) meta() Meta {
	return Meta{Seq: f.seq, Timestamp: f.ts, Publisher: f.publisher, Gateway: string(f.gateway),
		Type: Type{Name: string(f.typeName), Size: f.typeSize, Align: f.typeAlign}}
}

// headerLen is the length of the header in front of the payload.
func headerLen(gateway string, t Type, split bool) int {
	n := fixedLen + len(gateway) + len(t.Name)
	if split {
		n += partBlockLen
	}
	return n
}

// appendPrefix appends a header with zero origin and part fields, to be
// filled per message by setOrigin and setPart. The caller checked the
// lengths (options validation).
func appendPrefix(dst []byte, gateway string, t Type, split bool) []byte {
	var h [fixedLen + partBlockLen]byte
	h[0], h[1], h[2] = frameMagic[0], frameMagic[1], frameVersion
	n := fixedLen
	if split {
		h[3] = flagPart
		n += partBlockLen
	}
	h[4], h[5] = byte(len(gateway)), byte(len(t.Name))
	binary.LittleEndian.PutUint32(h[28:], t.Size)
	binary.LittleEndian.PutUint32(h[32:], t.Align)
	dst = append(dst, h[:n]...)
	dst = append(dst, gateway...)
	return append(dst, t.Name...)
}

// setOrigin fills the origin fields of the header at the start of b.
func setOrigin(b []byte, seq uint64, ts int64, publisher uint32) {
	binary.LittleEndian.PutUint64(b[8:], seq)
	binary.LittleEndian.PutUint64(b[16:], uint64(ts))
	binary.LittleEndian.PutUint32(b[24:], publisher)
}

// appendRecord appends a batch record carrying payload data to dst.
func appendRecord(dst []byte, seq uint64, ts int64, publisher uint32, data []byte) []byte {
	dst = binary.LittleEndian.AppendUint64(dst, seq)
	dst = binary.LittleEndian.AppendUint64(dst, uint64(ts))
	dst = binary.LittleEndian.AppendUint32(dst, publisher)
	dst = binary.LittleEndian.AppendUint32(dst, uint32(len(data)))
	return append(dst, data...)
}

// nextRecord splits the first record off the records of a batch that
// parseFrame validated.
func nextRecord(b []byte) (seq uint64, ts int64, publisher uint32, payload, rest []byte) {
	n := recordLen + int(binary.LittleEndian.Uint32(b[20:]))
	return binary.LittleEndian.Uint64(b), int64(binary.LittleEndian.Uint64(b[8:])),
		binary.LittleEndian.Uint32(b[16:]), b[recordLen:n], b[n:]
}

// setCount fills the record count of the batch header at the start of b.
func setCount(b []byte, n int) { binary.LittleEndian.PutUint32(b[8:], uint32(n)) }

// frameMessages is the number of messages in frame b as the exporter
// built it: a batch's record count, or 1.
func frameMessages(b []byte) uint64 {
	if len(b) >= fixedLen && b[3] == flagBatch {
		return uint64(binary.LittleEndian.Uint32(b[8:]))
	}
	return 1
}

// setPart fills the part block of the (split) header at the start of b.
func setPart(b []byte, total uint64, part, count uint32, offset uint64) {
	binary.LittleEndian.PutUint64(b[36:], total)
	binary.LittleEndian.PutUint32(b[44:], part)
	binary.LittleEndian.PutUint32(b[48:], count)
	binary.LittleEndian.PutUint64(b[52:], offset)
}

// parseFrame decodes b into f, validating every field another process
// wrote. A part's fields are checked for consistency (index below count,
// offset and length inside the total) but not against other parts.
func parseFrame(b []byte, f *frame) error {
	if len(b) < fixedLen {
		return fmt.Errorf("message of %d bytes is shorter than the %d-byte header: %w", len(b), fixedLen, ErrNotParallax)
	}
	if !bytes.Equal(b[:2], frameMagic[:]) {
		return fmt.Errorf("message starts with %q, not the magic %q: %w", b[:2], frameMagic[:], ErrNotParallax)
	}
	if b[2] != frameVersion {
		return fmt.Errorf("header version %d, want %d: %w", b[2], frameVersion, ErrNotParallax)
	}
	if (b[3] != 0 && b[3] != flagPart && b[3] != flagBatch) || b[6] != 0 || b[7] != 0 {
		return fmt.Errorf("header flags %#x (want 0, %d or %d) or reserved bytes %#x %#x not zero: %w",
			b[3], flagPart, flagBatch, b[6], b[7], ErrNotParallax)
	}
	f.split, f.batch = b[3] == flagPart, b[3] == flagBatch
	g, t := int(b[4]), int(b[5])
	if g == 0 {
		return fmt.Errorf("header has an empty gateway id: %w", ErrNotParallax)
	}
	n := fixedLen
	if f.split {
		n += partBlockLen
	}
	if len(b) < n+g+t {
		return fmt.Errorf("message of %d bytes is shorter than its %d-byte header: %w", len(b), n+g+t, ErrNotParallax)
	}
	f.seq = binary.LittleEndian.Uint64(b[8:])
	f.ts = int64(binary.LittleEndian.Uint64(b[16:]))
	f.publisher = binary.LittleEndian.Uint32(b[24:])
	f.typeSize = binary.LittleEndian.Uint32(b[28:])
	f.typeAlign = binary.LittleEndian.Uint32(b[32:])
	f.gateway = b[n : n+g]
	f.typeName = b[n+g : n+g+t]
	f.payload = b[n+g+t:]
	f.part, f.count, f.total, f.offset = 0, 1, uint64(len(f.payload)), 0
	if f.batch {
		return parseRecords(b, f)
	}
	if !f.split {
		return nil
	}
	f.total = binary.LittleEndian.Uint64(b[36:])
	f.part = binary.LittleEndian.Uint32(b[44:])
	f.count = binary.LittleEndian.Uint32(b[48:])
	f.offset = binary.LittleEndian.Uint64(b[52:])
	switch {
	case f.count < 2 || f.part >= f.count:
		return fmt.Errorf("part %d of %d: want count >= 2 and index < count: %w", f.part, f.count, ErrNotParallax)
	case f.part == 0 && f.offset != 0:
		return fmt.Errorf("first part at offset %d, want 0: %w", f.offset, ErrNotParallax)
	case f.total < uint64(f.count):
		return fmt.Errorf("%d-byte message in %d parts: every part must carry bytes: %w", f.total, f.count, ErrNotParallax)
	case len(f.payload) == 0 || f.offset > f.total || uint64(len(f.payload)) > f.total-f.offset:
		return fmt.Errorf("part %d: %d bytes at offset %d overflow the %d-byte message: %w",
			f.part, len(f.payload), f.offset, f.total, ErrNotParallax)
	case f.part == f.count-1 && f.offset+uint64(len(f.payload)) != f.total:
		return fmt.Errorf("last part %d ends at %d, not at the message end %d: %w",
			f.part, f.offset+uint64(len(f.payload)), f.total, ErrNotParallax)
	}
	return nil
}

// parseRecords validates the records of batch f (header b): the count
// and the zero origin fields of the header, each record's length, and that
// the records fill the message exactly. The loop is bounded by the count,
// itself bounded by the bytes there are.
func parseRecords(b []byte, f *frame) error {
	count := binary.LittleEndian.Uint32(b[8:])
	if binary.LittleEndian.Uint32(b[12:]) != 0 || binary.LittleEndian.Uint64(b[16:]) != 0 || binary.LittleEndian.Uint32(b[24:]) != 0 {
		return fmt.Errorf("batch header: origin bytes 12..27 not zero: %w", ErrNotParallax)
	}
	if count == 0 || uint64(count) > uint64(len(f.payload)/recordLen) {
		return fmt.Errorf("batch of %d records in %d bytes: want 1..%d: %w", count, len(f.payload), len(f.payload)/recordLen, ErrNotParallax)
	}
	rest := f.payload
	for k := range count {
		if len(rest) < recordLen {
			return fmt.Errorf("batch record %d of %d: %d bytes left, shorter than the %d-byte record header: %w",
				k, count, len(rest), recordLen, ErrNotParallax)
		}
		if n := uint64(binary.LittleEndian.Uint32(rest[20:])); n > uint64(len(rest)-recordLen) {
			return fmt.Errorf("batch record %d of %d: payload of %d bytes, only %d left: %w",
				k, count, n, len(rest)-recordLen, ErrNotParallax)
		}
		rest = rest[recordLen+int(binary.LittleEndian.Uint32(rest[20:])):]
	}
	if len(rest) != 0 {
		return fmt.Errorf("batch of %d records: %d bytes after the last record: %w", count, len(rest), ErrNotParallax)
	}
	f.count = count
	return nil
}
