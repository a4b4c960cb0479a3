package ringbuf

import (
	"encoding/binary"
	"fmt"

	"github.com/parallax-ipc/parallax"
)

// Connection segment layout (design §1.4, see the package doc's drawing).
const (
	// ConnMagic starts every connection segment: "PLXCONN1" little-endian.
	ConnMagic uint64 = 0x314e4e4f43584c50
	// ConnHeaderSize is the size of the connection header.
	ConnHeaderSize = 128
	// ConnPageSize is the unit [ConnSize] rounds up to.
	ConnPageSize = 4096

	// Header field offsets.
	connOffMagic      = 0
	connOffVersion    = 8
	connOffPolicy     = 12
	connOffConnID     = 16
	connOffPubID      = 20
	connOffSubID      = 24
	connOffMaxHeld    = 28
	connOffDataCap    = 32
	connOffReturnCap  = 36
	connOffBound      = 40
	connOffReserved44 = 44
	connOffDataRing   = 48
	connOffReturnRing = 56
	connOffDataWake   = 64
	connOffReturnWake = 72
	connOffSize       = 80
	connOffReserved   = 88

	// Region offsets that do not depend on the capacities.
	connDataWakeOff   = ConnHeaderSize
	connReturnWakeOff = connDataWakeOff + lineSize
	connDataRingOff   = connReturnWakeOff + lineSize
)

// A ConnDesc describes one publisher–subscriber connection segment: what the
// router sends both ends, and what [AttachConn] checks the segment against.
// It is a plain value.
type ConnDesc struct {
	ConnID, PubID, SubID uint32
	// Policy is the data ring's overflow policy: [DiscardOldest] or
	// [BlockProducer]. The return ring is always [Reject].
	Policy Policy
	// DataCap is the data ring's capacity (the subscriber's queue
	// capacity), ReturnCap the return ring's; both powers of two in
	// [1, MaxCapacity].
	DataCap, ReturnCap uint32
	// MaxHeld is the subscriber's cap on samples held at once.
	MaxHeld uint32
	// Bound is the publisher's cap on chunks outstanding on the connection,
	// 1 ≤ Bound ≤ ReturnCap: every outstanding chunk fits in the return
	// ring, so an honest subscriber's return push never fails.
	Bound uint32
}

// connLayout holds the offsets computed from a ConnDesc.
type connLayout struct {
	dataRing, returnRing, size int
}

func layoutConn(dataCap, retCap int) connLayout {
	ret := connDataRingOff + alignUp(Size(dataCap), lineSize)
	end := ret + Size(retCap)
	return connLayout{dataRing: connDataRingOff, returnRing: ret, size: alignUp(end, ConnPageSize)}
}

func alignUp(n, a int) int { return (n + a - 1) / a * a }

func validCap(c uint32) bool { return c >= 1 && c <= MaxCapacity && c&(c-1) == 0 }

// validate checks d and returns its layout; errors name the bad field.
func (d ConnDesc) validate() (connLayout, error) {
	switch {
	case d.Policy != DiscardOldest && d.Policy != BlockProducer:
		return connLayout{}, fmt.Errorf("data ring %v is neither discard-oldest nor block-producer", d.Policy)
	case !validCap(d.DataCap):
		return connLayout{}, fmt.Errorf("data capacity %d is not a power of two in [1, %d]", d.DataCap, MaxCapacity)
	case !validCap(d.ReturnCap):
		return connLayout{}, fmt.Errorf("return capacity %d is not a power of two in [1, %d]", d.ReturnCap, MaxCapacity)
	case d.Bound < 1 || d.Bound > d.ReturnCap:
		return connLayout{}, fmt.Errorf("bound %d is not in [1, return capacity %d]", d.Bound, d.ReturnCap)
	}
	return layoutConn(int(d.DataCap), int(d.ReturnCap)), nil
}

// ConnSize returns the size of a connection segment whose rings have the
// given capacities (powers of two, as [FormatConn] requires): header, two
// notifiers, data ring, return ring, rounded up to [ConnPageSize].
func ConnSize(dataCap, retCap int) int { return layoutConn(dataCap, retCap).size }

// A Conn is one mapped connection segment: the data ring (publisher →
// subscriber), the return ring (subscriber → publisher, policy [Reject]) and
// a notifier for each direction's sleeper. Every offset and capacity comes
// from the [ConnDesc] and is cached; nothing is re-read from the segment
// header after [AttachConn].
//
// Use [FormatConn] or [AttachConn]; the zero value is invalid. A Conn must not
// be copied. Its rings and notifiers follow their own concurrency rules: on
// the data ring the publisher is the one producer and the subscriber the one
// consumer, on the return ring the other way round. A Conn owns no resources:
// the caller keeps the memory mapped while it is used.
type Conn struct {
	desc       ConnDesc
	size       int
	data, ret  *Ring
	dataWake   *Notifier
	returnWake *Notifier
}

// FormatConn lays out a connection segment in mem as d describes and returns
// it. The router runs it once on a new segment, before handing the segment
// to either end. mem must be 8-byte aligned (an mmap is) and at least
// [ConnSize] bytes; FormatConn clears that much. Errors wrap
// [ErrInvalidArgument].
func FormatConn(mem []byte, d ConnDesc) (*Conn, error) {
	l, err := d.validate()
	if err != nil {
		return nil, fmt.Errorf("format connection %d: %w: %w", d.ConnID, err, ErrInvalidArgument)
	}
	if len(mem) < l.size {
		return nil, fmt.Errorf("format connection %d: region of %d bytes, layout needs %d: %w", d.ConnID, len(mem), l.size, ErrInvalidArgument)
	}
	if !aligned8(mem) {
		return nil, fmt.Errorf("format connection %d: region is not 8-byte aligned: %w", d.ConnID, ErrInvalidArgument)
	}
	mem = mem[:l.size]
	// Nobody maps the segment yet (the router hands the fd out after
	// formatting): plain stores.
	clear(mem)
	c := &Conn{desc: d, size: l.size}
	if c.dataWake, err = FormatNotifier(mem[connDataWakeOff : connDataWakeOff+NotifierSize]); err != nil {
		return nil, fmt.Errorf("format connection %d: %w", d.ConnID, err)
	}
	if c.returnWake, err = FormatNotifier(mem[connReturnWakeOff : connReturnWakeOff+NotifierSize]); err != nil {
		return nil, fmt.Errorf("format connection %d: %w", d.ConnID, err)
	}
	if c.data, err = Format(mem[l.dataRing:l.dataRing+Size(int(d.DataCap))], int(d.DataCap), d.Policy); err != nil {
		return nil, fmt.Errorf("format connection %d data ring: %w", d.ConnID, err)
	}
	if c.ret, err = Format(mem[l.returnRing:l.returnRing+Size(int(d.ReturnCap))], int(d.ReturnCap), Reject); err != nil {
		return nil, fmt.Errorf("format connection %d return ring: %w", d.ConnID, err)
	}
	h := mem[:ConnHeaderSize]
	le := binary.LittleEndian
	for _, f := range connFields(d, l) {
		if f.wide() {
			le.PutUint64(h[f.off:], f.want)
		} else {
			le.PutUint32(h[f.off:], uint32(f.want))
		}
	}
	return c, nil
}

type connField struct {
	name string
	off  int
	want uint64
}

// wide reports whether the field is 64 bits (the magic and the offsets and
// size from connOffDataRing on) rather than 32.
func (f connField) wide() bool { return f.off == connOffMagic || f.off >= connOffDataRing }

// connFields lists every header field with the value d and l give it, in
// layout order.
func connFields(d ConnDesc, l connLayout) []connField {
	return []connField{
		{"magic", connOffMagic, ConnMagic},
		{"layout version", connOffVersion, LayoutVersion},
		{"policy", connOffPolicy, uint64(d.Policy)},
		{"connection id", connOffConnID, uint64(d.ConnID)},
		{"publisher id", connOffPubID, uint64(d.PubID)},
		{"subscriber id", connOffSubID, uint64(d.SubID)},
		{"max held", connOffMaxHeld, uint64(d.MaxHeld)},
		{"data capacity", connOffDataCap, uint64(d.DataCap)},
		{"return capacity", connOffReturnCap, uint64(d.ReturnCap)},
		{"bound", connOffBound, uint64(d.Bound)},
		{"data ring offset", connOffDataRing, uint64(l.dataRing)},
		{"return ring offset", connOffReturnRing, uint64(l.returnRing)},
		{"data wake offset", connOffDataWake, connDataWakeOff},
		{"return wake offset", connOffReturnWake, connReturnWakeOff},
		{"size", connOffSize, uint64(l.size)},
	}
}

// AttachConn validates the connection segment in mem against d, the
// descriptor the router sent, and returns it. Both ends call it.
//
// It recomputes the layout from d, reads the header once and requires every
// field to equal d's (magic, version, policy, ids, max held, capacities,
// bound, offsets, size; the reserved bytes 0), then attaches the notifiers and rings at the computed
// offsets and requires their own headers to agree with d. Errors wrap
// [parallax.ErrCorrupt] and name the first field that differs; an invalid d
// wraps [ErrInvalidArgument]. AttachConn writes nothing.
func AttachConn(mem []byte, d ConnDesc) (*Conn, error) {
	l, err := d.validate()
	if err != nil {
		return nil, fmt.Errorf("attach connection %d: %w: %w", d.ConnID, err, ErrInvalidArgument)
	}
	if len(mem) < l.size {
		return nil, fmt.Errorf("attach connection %d: region of %d bytes, layout needs %d: %w", d.ConnID, len(mem), l.size, parallax.ErrCorrupt)
	}
	if !aligned8(mem) {
		return nil, fmt.Errorf("attach connection %d: region is not 8-byte aligned: %w", d.ConnID, parallax.ErrCorrupt)
	}
	var h [ConnHeaderSize]byte
	copy(h[:], mem) // one read; every check below uses the copy
	le := binary.LittleEndian
	for _, f := range connFields(d, l) {
		got := uint64(le.Uint32(h[f.off:]))
		if f.wide() {
			got = le.Uint64(h[f.off:])
		}
		if got != f.want {
			return nil, fmt.Errorf("attach connection %d: header %s is %#x, descriptor says %#x: %w",
				d.ConnID, f.name, got, f.want, parallax.ErrCorrupt)
		}
	}
	if r := le.Uint32(h[connOffReserved44:]); r != 0 {
		return nil, fmt.Errorf("attach connection %d: reserved header word at %d is %#x, want 0: %w", d.ConnID, connOffReserved44, r, parallax.ErrCorrupt)
	}
	for i := connOffReserved; i < ConnHeaderSize; i++ {
		if h[i] != 0 {
			return nil, fmt.Errorf("attach connection %d: reserved header byte %d is %#x, want 0: %w", d.ConnID, i, h[i], parallax.ErrCorrupt)
		}
	}
	mem = mem[:l.size]
	c := &Conn{desc: d, size: l.size}
	if c.dataWake, err = AttachNotifier(mem[connDataWakeOff : connDataWakeOff+NotifierSize]); err != nil {
		return nil, fmt.Errorf("attach connection %d data wake: %w", d.ConnID, err)
	}
	if c.returnWake, err = AttachNotifier(mem[connReturnWakeOff : connReturnWakeOff+NotifierSize]); err != nil {
		return nil, fmt.Errorf("attach connection %d return wake: %w", d.ConnID, err)
	}
	if c.data, err = attachConnRing(mem[l.dataRing:l.dataRing+Size(int(d.DataCap))], d.DataCap, d.Policy); err != nil {
		return nil, fmt.Errorf("attach connection %d data ring: %w", d.ConnID, err)
	}
	if c.ret, err = attachConnRing(mem[l.returnRing:l.returnRing+Size(int(d.ReturnCap))], d.ReturnCap, Reject); err != nil {
		return nil, fmt.Errorf("attach connection %d return ring: %w", d.ConnID, err)
	}
	return c, nil
}

// attachConnRing attaches the ring in mem (exactly Size(capacity) bytes)
// and requires its header to say capacity and policy. The Ring caches both.
func attachConnRing(mem []byte, capacity uint32, p Policy) (*Ring, error) {
	r, err := Attach(mem)
	if err != nil {
		return nil, err
	}
	if r.Cap() != int(capacity) || r.Policy() != p {
		return nil, fmt.Errorf("ring header says capacity %d and %v, descriptor says %d and %v: %w",
			r.Cap(), r.Policy(), capacity, p, parallax.ErrCorrupt)
	}
	return r, nil
}

// Desc returns the descriptor c was made from.
func (c *Conn) Desc() ConnDesc { return c.desc }

// Size returns the segment size c occupies ([ConnSize] of its capacities).
func (c *Conn) Size() int { return c.size }

// DataRing returns the data ring: the publisher pushes refs of its chunks,
// the subscriber pops them.
func (c *Conn) DataRing() *Ring { return c.data }

// ReturnRing returns the return ring (policy [Reject]): the subscriber
// pushes the refs it releases, the publisher drains them with
// [Conn.PopBatch].
func (c *Conn) ReturnRing() *Ring { return c.ret }

// DataWake returns the notifier the subscriber sleeps on; the publisher
// notifies it after pushing into the data ring.
func (c *Conn) DataWake() *Notifier { return c.dataWake }

// ReturnWake returns the notifier the publisher sleeps on (waiting for
// returns: a blocking loan, or a connection at its bound); the subscriber
// notifies it after pushing into the return ring.
func (c *Conn) ReturnWake() *Notifier { return c.returnWake }

// PopBatch drains up to len(dst) released refs from the return ring into dst
// and returns how many: [Ring.PopBatch] on [Conn.ReturnRing]. Publisher side
// only. Errors wrap [ErrCorruptRing] and concern this connection only.
func (c *Conn) PopBatch(dst []parallax.ChunkRef) (int, error) { return c.ret.PopBatch(dst) }
