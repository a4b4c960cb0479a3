package subscriber

import "github.com/parallax-ipc/parallax/ringbuf"

// Ready reports whether a take would find a sample (or that the
// subscriber closed). It takes no lock, makes no system call and
// allocates nothing: the readiness check of a wait set (package waitset).
func (s *Subscriber) Ready() bool { return s.hasData() }

// AppendNotifiers appends the futex words a wait set sleeps on for s (the
// subscriber's notifier; in the owned model the data wake of every
// connection) and returns them with a generation that changes when that
// set of words changes (a wait set then rebuilds). In the owned model it
// also registers the caller as the subscriber's waiter until
// [Subscriber.LeaveWait]: a connection removed meanwhile is unmapped only
// after that, never under the sleeping wait set. So a wait set over s and
// a Take on s must not wait at the same time.
func (s *Subscriber) AppendNotifiers(dst []*ringbuf.Notifier) ([]*ringbuf.Notifier, uint64) {
	if o := s.own.Load(); o != nil {
		return o.eng.EnterWait(dst)
	}
	return append(dst, s.notifier), 0
}

// LeaveWait tells s that the wait set that called AppendNotifiers no
// longer touches the words it returned.
func (s *Subscriber) LeaveWait() {
	if o := s.own.Load(); o != nil {
		o.eng.LeaveWait()
	}
}

// Changed reports, to the wait set between AppendNotifiers and LeaveWait,
// whether the words changed (a connection came or went): it should stop
// sleeping and ask again. Lock-free; only that wait set may call it.
func (s *Subscriber) Changed() bool {
	if o := s.own.Load(); o != nil {
		return o.eng.Changed()
	}
	return false
}
