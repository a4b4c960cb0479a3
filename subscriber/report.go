package subscriber

import (
	"context"
	"errors"
	"sync/atomic"
	"time"

	"github.com/parallax-ipc/parallax"
	"github.com/parallax-ipc/parallax/internal/wire"
)

// maxReportsInFlight bounds the reports one subscriber has outstanding: a
// ring full of garbage costs the router a bounded number of messages.
const maxReportsInFlight = 4

// reporter tells the router about bad refs popped from a connection's ring
// (see the roudi package's trust model: the router verifies the report and
// disconnects a publisher process that keeps corrupting rings). The zero
// value is ready to use; it is safe for concurrent use.
type reporter struct {
	inFlight atomic.Int32
	sent     atomic.Uint64
	skipped  atomic.Uint64
}

// badRef reports whether err says that a ref names no chunk held by
// anyone (pool or slot out of range, generation 0 or moved on, reference
// count 0), as opposed to a problem with a chunk that is held.
func badRef(err error) bool {
	return errors.Is(err, parallax.ErrInvalidRef) || errors.Is(err, parallax.ErrStaleRef) || errors.Is(err, parallax.ErrNotHeld)
}

// report sends a wire.ReportPeer for ref, popped from c's ring, when err
// says that ref names no held chunk (not for local failures such as a full
// hold table). It never blocks the caller: the request runs on its own
// goroutine, and when [maxReportsInFlight] are already outstanding the
// report is skipped.
func (s *Subscriber) report(c *conn, ref parallax.ChunkRef, err error) {
	if !badRef(err) {
		return
	}
	r := &s.reports
	if r.inFlight.Add(1) > maxReportsInFlight {
		r.inFlight.Add(-1)
		r.skipped.Add(1)
		return
	}
	m := &wire.ReportPeer{ConnID: c.id, SubID: s.id, Ref: uint64(ref), Reason: wire.ReportBadRef, Detail: err.Error()}
	if len(m.Detail) > wire.MaxTextLen {
		m.Detail = m.Detail[:wire.MaxTextLen]
	}
	go func() {
		defer r.inFlight.Add(-1)
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		defer cancel()
		if _, _, err := s.rt.Request(ctx, m); err == nil {
			r.sent.Add(1)
		}
	}()
}

// Reports returns how many bad refs this subscriber reported to the router
// (sent and acknowledged) and how many it skipped because too many reports
// were outstanding. A bad ref is one a publisher's ring carried that named
// no held chunk; Take returned an error for each.
func (s *Subscriber) Reports() (sent, skipped uint64) {
	return s.reports.sent.Load(), s.reports.skipped.Load()
}
