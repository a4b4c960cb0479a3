package subscriber

import (
	"context"
	"log/slog"
	"time"

	"github.com/parallax-ipc/parallax/internal/wire"
)

// corruptRing handles a connection whose ring reported impossible indices
// (ringbuf.ErrCorruptRing: a faulty or hostile peer wrote them). The first
// time it counts the connection and logs; for a live connection (live) it
// then, on its own goroutine, stops using the ring — removes the connection
// from the take set and waits out a take that may still pop from it — and
// tells the router (wire.ReportPeer, reason ReportCorruptRing), which checks
// the ring, cuts the connection for both ends and disconnects the offender.
// Takes go on with the other connections meanwhile: a pop from the corrupt
// ring returns nothing. Nothing here allocates by what the peer wrote.
func (s *Subscriber) corruptRing(c *conn, err error, live bool) {
	if !c.corrupt.CompareAndSwap(false, true) {
		return
	}
	s.corruptConns.Add(1)
	slog.Warn("parallax: subscriber stops using a corrupt connection ring", "topic", s.topic, "conn", c.id, "pub", c.pub, "err", err)
	if !live {
		return
	}
	m := &wire.ReportPeer{ConnID: c.id, SubID: s.id, Reason: wire.ReportCorruptRing, Detail: err.Error()}
	if len(m.Detail) > wire.MaxTextLen {
		m.Detail = m.Detail[:wire.MaxTextLen]
	}
	go func() {
		s.connMu.Lock()
		old := *s.conns.Load()
		next := make([]*conn, 0, len(old))
		for _, o := range old {
			if o != c {
				next = append(next, o)
			}
		}
		s.conns.Store(&next)
		// When the router's ConnectionRemoved finds the connection gone,
		// it lets go of the ring at once: no take may still use it.
		s.busy.waitPass()
		s.connMu.Unlock()
		s.changed.Broadcast()
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		defer cancel()
		_, _, _ = s.rt.Request(ctx, m)
	}()
}

// CorruptConnections returns how many of this subscriber's connections had
// a ring with impossible indices (a faulty or hostile publisher, most
// likely). Each was dropped, its queued samples lost, and the router told;
// samples from other publishers are unaffected.
func (s *Subscriber) CorruptConnections() uint64 { return s.corruptConns.Load() }
