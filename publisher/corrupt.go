package publisher

import (
	"context"
	"log/slog"
	"time"

	"github.com/parallax-ipc/parallax/internal/wire"
)

// corruptRing handles a connection whose ring reported impossible indices
// (ringbuf.ErrCorruptRing: the consumer, or someone else with the mapping,
// wrote a head no consumer can produce). The push that found it failed and
// returned an error for this subscriber only. The first time, corruptRing
// counts and logs it, drops the connection from the publish set (so no
// later publish touches the ring) and, on its own goroutine, tells the
// router (wire.ReportPeer, reason ReportCorruptRing), which checks the ring,
// cuts the connection for both ends and disconnects the offender. Publishing
// to the other subscribers goes on.
func (p *Publisher) corruptRing(cn *conn, err error) {
	if !cn.corrupt.CompareAndSwap(false, true) {
		return
	}
	p.corruptConns.Add(1)
	slog.Warn("parallax: publisher stops using a corrupt connection ring", "topic", p.topic, "conn", cn.id, "sub", cn.sub, "err", err)
	m := &wire.ReportPeer{ConnID: cn.id, Reason: wire.ReportCorruptRing, Detail: err.Error()}
	if len(m.Detail) > wire.MaxTextLen {
		m.Detail = m.Detail[:wire.MaxTextLen]
	}
	// The caller (a publish) holds the publishing side, which excludes
	// the control goroutine: the set of connections is ours to change.
	old := *p.conns.Load()
	next := make([]*conn, 0, len(old))
	for _, o := range old {
		if o != cn {
			next = append(next, o)
		}
	}
	p.conns.Store(&next)
	p.changed.Broadcast()
	go func() {
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		defer cancel()
		_, _, _ = p.rt.Request(ctx, m)
	}()
}

// CorruptConnections returns how many of this publisher's connections had a
// ring with impossible indices. Each was dropped (the publish that found it
// returned an error for that subscriber) and the router told.
func (p *Publisher) CorruptConnections() uint64 { return p.corruptConns.Load() }
