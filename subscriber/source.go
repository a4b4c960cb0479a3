package subscriber

import "github.com/parallax-ipc/parallax/ringbuf"

// Ready reports whether a take would find a sample (or that the
// subscriber closed). It takes no lock, makes no system call and
// allocates nothing: the readiness check of a wait set (package waitset).
func (s *Subscriber) Ready() bool { return s.hasData() }

// AppendNotifiers appends the futex words a wait set sleeps on for s (the
// subscriber's notifier; in the owned model the data wake of every
// connection) and returns them with a generation that changes when that
// set of words changes (a wait set then rebuilds). In the owned model a
// connection that goes while a wait set sleeps on its word ends that
// sleep with an error the wait set treats as "rebuild".
func (s *Subscriber) AppendNotifiers(dst []*ringbuf.Notifier) ([]*ringbuf.Notifier, uint64) {
	if o := s.own.Load(); o != nil {
		return o.eng.Notifiers(dst)
	}
	return append(dst, s.notifier), 0
}
