package core

import "log/slog"

// CutConnection removes a connection whose ring is corrupt (its indices
// are impossible: see ringbuf.ErrCorruptRing), as if both ends had closed
// it: both are told with ConnectionRemoved, and the ring is retired until
// both released it (or the quarantine ends), then freed. The publisher and
// the subscriber stay; their other connections are untouched. Cutting a
// connection that no longer exists does nothing.
type CutConnection struct {
	Connection ConnectionID
	Reason     string
}

func (CutConnection) isEvent() {}

func (r *Router) cut(ev CutConnection) {
	l, ok := r.links[ev.Connection]
	if !ok {
		return
	}
	r.retire(l.ring, RegionRing, r.unlink(l, true, true, ev.Reason))
	r.log(slog.LevelWarn, "connection cut", slog.Int("connection", int(ev.Connection)), slog.String("reason", ev.Reason))
}
