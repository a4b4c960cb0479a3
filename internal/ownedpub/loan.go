package ownedpub

import (
	"errors"
	"fmt"

	"github.com/parallax-ipc/parallax"
	"github.com/parallax-ipc/parallax/dataseg"
	"github.com/parallax-ipc/parallax/internal/testhook"
)

// A Loan is one chunk of the publisher's data segment, loaned for writing
// until [Engine.Publish] or [Engine.Release]. It is a small value; copies
// name the same loan, and only one of them may be published or released
// (the others then get [ErrNotLoaned]). The zero Loan is not loaned.
type Loan struct {
	idx    uint32
	length uint32 // SetMeta's Length (0: len(buf) at Publish)
	ref    parallax.ChunkRef
	buf    []byte
	stamp  int64
	e      *Engine
	seg    *dataseg.Segment // the chunk's segment (SetMeta writes its header)
	media  bool             // SetMeta wrote the media fields into the header
}

// Bytes returns the n bytes asked for; its capacity ends at the chunk. It
// aliases the publisher's shared memory and is only valid until the loan
// is published or released: subscribers read it from then on.
func (l *Loan) Bytes() []byte { return l.buf }

// Ref returns the loaned chunk's ref (segment, slot, generation).
func (l *Loan) Ref() parallax.ChunkRef { return l.ref }

// SetMeta sets the chunk header written at Publish: its media fields
// (Flags, PTS, DTS, Duration, Offset, UserSeq) go into the loaned chunk's
// header now (the publisher's own memory, which no reader looks at before
// the publish), Length (0: the loan's size at Publish) and Stamp at
// Publish; Seq is the publisher's sequence number. Without SetMeta a
// publish writes the media fields as zero. A Loan is small (no header
// copy), so the value is cheap to pass around. On a copy that is no
// longer loaned (published or released already) SetMeta writes nothing:
// the chunk may be another sample by now. To know that, it takes the
// engine's lock once: a publish with SetMeta (rpc, ipcsink) costs one
// lock pair more than one without.
func (l *Loan) SetMeta(m dataseg.Meta) {
	l.length, l.stamp = m.Length, m.Stamp
	if l.e == nil {
		return
	}
	e := l.e
	e.lock()
	if e.loaned(l) {
		l.seg.SetMedia(l.ref.Slot(), m)
		l.media = true
	}
	e.unlock()
}

// SetStamp sets only the publish time of the chunk header written at
// Publish, keeping what [Loan.SetMeta] set.
func (l *Loan) SetStamp(ns int64) { l.stamp = ns }

// SmallestClass returns the chunk size of the smallest size class that
// holds n bytes and how many of its chunks are free now (0, 0 when no
// class holds n), without draining the return rings.
func (e *Engine) SmallestClass(n int) (size uint32, free int) {
	e.lock()
	defer e.unlock()
	class, ok := e.tr.ClassFor(n)
	if !ok {
		return 0, 0
	}
	return e.tr.ClassSize(class), e.tr.ClassFree(class)
}

// Loan loans a chunk of the smallest size class that holds n bytes: the
// most recently returned one. When the class is empty it drains every
// connection's return ring and tries once more, then takes a chunk of the
// smallest larger class that has one free.
//
// Errors: [ErrClosed] after Close; [ErrTooLarge]; one wrapping
// [parallax.ErrLimit] when MaxLoans chunks are loaned; one wrapping
// [parallax.ErrPoolExhausted] when no chunk is free after the drain. Loan
// allocates nothing.
func (e *Engine) Loan(n int) (Loan, error) {
	var l Loan
	err := e.LoanInto(&l, n)
	return l, err
}

// LoanInto is [Engine.Loan] that stores the loan in *l (the zero Loan on
// error): a caller that keeps the loan in a larger value (a publisher's
// Chunk) writes it once instead of copying it out of a return value.
func (e *Engine) LoanInto(l *Loan, n int) error {
	if n < 0 {
		*l = Loan{}
		return errNegative
	}
	e.lock()
	defer e.unlock()
	if e.gate.Closed() {
		*l = Loan{}
		return ErrClosed
	}
	class, ok := e.tr.ClassFor(n)
	if !ok {
		*l = Loan{}
		return ErrTooLarge
	}
	idx, ref, err := e.tr.Loan(class)
	if errors.Is(err, parallax.ErrPoolExhausted) {
		e.drainAll()
		idx, ref, err = e.tr.Loan(class)
		if errors.Is(err, parallax.ErrPoolExhausted) {
			// A larger class serves it rather than a failure or a
			// growth (an undersized class must not fail a loan the
			// publisher's own class could serve).
			if larger, ok := e.tr.LargerFree(class); ok {
				idx, ref, err = e.tr.Loan(larger)
			}
		}
	}
	if err != nil {
		*l = Loan{}
		return err
	}
	testhook.Stop("loan.popped") // kill window: loaned in private state only
	seg := e.segs[ref.Pool()]
	*l = Loan{idx: idx, ref: ref, buf: seg.Chunk(ref.Slot())[:n], e: e, seg: seg}
	return nil
}

var errNegative = fmt.Errorf("loan of a negative size: %w", ErrInvalidArgument)

// Release gives back a loan that was not published, after Close too (the
// last loan of a closed engine runs OnIdle). Errors: [ErrNotLoaned]
// (published or released already; [ErrClosed] instead after Close). The
// loan is invalid afterwards.
func (e *Engine) Release(l *Loan) error {
	e.lock()
	if !e.loaned(l) {
		closed := e.gate.Closed()
		e.unlock()
		if closed {
			return ErrClosed
		}
		return ErrNotLoaned
	}
	if err := e.tr.Unloan(l.idx); err != nil {
		e.unlock()
		return err
	}
	*l = Loan{}
	e.loanDone()
	idle := e.gate.Closed() && e.becameIdle()
	e.unlock()
	e.runIdle(idle)
	return nil
}

// loanDone wakes the LoanWait calls waiting at MaxLoans, if any. mu held.
func (e *Engine) loanDone() {
	if e.loanEnded != nil {
		close(e.loanEnded)
		e.loanEnded = nil
	}
}

// loaned reports whether l is a current loan of e: its chunk is loaned
// under l's generation (a stale copy of a published loan whose chunk was
// loaned again has an older generation). mu held.
func (e *Engine) loaned(l *Loan) bool {
	return l.ref != parallax.NilRef && e.tr.Ref(l.idx) == l.ref && e.tr.Loaned(l.idx)
}

// Truncate makes l announce only its first n bytes at Publish (the chunk
// header's Length, unless [Loan.SetMeta] sets one); n outside
// [0, len(Bytes())] changes nothing.
func (l *Loan) Truncate(n int) {
	if n >= 0 && n <= len(l.buf) {
		l.buf = l.buf[:n]
	}
}
