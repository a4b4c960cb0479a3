package clientrt

import (
	"context"
	"sync"
)

// Signal wakes goroutines waiting for a condition that changes on the
// control path (for example "at least n subscribers connected"). The zero
// value is ready to use; it must not be copied after first use.
type Signal struct {
	mu sync.Mutex
	ch chan struct{}
}

func (s *Signal) wait() <-chan struct{} {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.ch == nil {
		s.ch = make(chan struct{})
	}
	return s.ch
}

// Broadcast wakes every current waiter.
func (s *Signal) Broadcast() {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.ch != nil {
		close(s.ch)
		s.ch = nil
	}
}

// Wait returns nil once cond() is true, or ctx's error. cond is re-checked
// after every Broadcast.
func (s *Signal) Wait(ctx context.Context, cond func() bool) error {
	for {
		ch := s.wait()
		if cond() {
			return nil
		}
		select {
		case <-ch:
		case <-ctx.Done():
			return ctx.Err()
		}
	}
}
