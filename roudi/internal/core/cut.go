package core

import (
	"log/slog"
	"maps"
)

// CutConnection removes a connection an end reported corrupt (impossible
// ring indices, see ringbuf.ErrCorruptRing, or refs naming nothing), as if
// both ends had closed it: both are told with ConnectionRemoved, and the
// connection segment is closed once both released it or are gone. The publisher and
// the subscriber stay, unconnected to each other until either closes;
// their other connections are untouched. Cutting a connection that no
// longer exists does nothing.
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
	if r.cuts == nil {
		r.cuts = make(map[cutPair]bool)
	}
	r.cuts[cutPair{pub: l.pub.id, sub: l.sub.id}] = true
	r.unlink(l, true, true, ev.Reason, endCorrupt)
	r.log(slog.LevelWarn, "connection cut", slog.Int("connection", int(ev.Connection)), slog.String("reason", ev.Reason))
}

// A cutPair is a publisher and a subscriber of one topic whose connection
// was cut: they stay unconnected while both live.
type cutPair struct {
	pub PubID
	sub SubID
}

// forgetCuts forgets the cut pairs matching gone (an endpoint closed).
func (r *Router) forgetCuts(gone func(cutPair) bool) {
	if len(r.cuts) != 0 {
		maps.DeleteFunc(r.cuts, func(c cutPair, _ bool) bool { return gone(c) })
	}
}
