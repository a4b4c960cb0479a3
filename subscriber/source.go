package subscriber

import "github.com/parallax-ipc/parallax/ringbuf"

// Ready reports whether a take would find a sample (or that the
// subscriber closed). It takes no lock, makes no system call and
// allocates nothing: the readiness check of a wait set (package waitset).
func (s *Subscriber) Ready() bool { return s.hasData() }

// AppendNotifiers appends the futex words a wait set sleeps on for s (the
// data wake of every connection) and returns them with a generation that
// changes when that set of words changes (a wait set then rebuilds). It
// also registers the caller as the subscriber's waiter until
// [Subscriber.LeaveWait]: a connection removed meanwhile is unmapped only
// after that, never under the sleeping wait set. So a wait set over s and
// a Take on s must not wait at the same time.
func (s *Subscriber) AppendNotifiers(dst []*ringbuf.Notifier) ([]*ringbuf.Notifier, uint64) {
	return s.own.Load().eng.EnterWait(dst)
}

// LeaveWait tells s that the wait set that called AppendNotifiers no
// longer touches the words it returned.
func (s *Subscriber) LeaveWait() { s.own.Load().eng.LeaveWait() }

// Changed reports, to the wait set between AppendNotifiers and LeaveWait,
// whether the words changed (a connection came or went): it should stop
// sleeping and ask again. Lock-free; only that wait set may call it.
func (s *Subscriber) Changed() bool { return s.own.Load().eng.Changed() }
