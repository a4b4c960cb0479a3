package roudi

import (
	"sync/atomic"
	"time"

	"github.com/parallax-ipc/parallax/roudi/internal/core"
)

// serverClock maps the core's ticks to real time (tick k begins at start +
// k·interval) and runs a timer only while some timed work is pending: the
// core's (Router.NextTick: handshake deadlines) and the resume grace. An
// idle router sleeps. Owned by the Serve goroutine.
type serverClock struct {
	interval time.Duration
	start    time.Time
	timer    *time.Timer
	armed    time.Time // when the timer fires; zero when stopped
	// wakeups counts the timer's firings and arms its settings (tests
	// check that an idle router has neither, and that pending work arms
	// it).
	wakeups atomic.Uint64
	arms    atomic.Uint64
}

// startClock starts the core's clock at tick 0 with the timer stopped.
func (s *Server) startClock(now time.Time) {
	c := &s.clock
	c.interval = s.opts.TickInterval
	c.start = now.Add(-time.Duration(s.core.Now()) * c.interval)
	c.timer = time.NewTimer(time.Hour)
	c.timer.Stop()
}

// clockC is the timer's channel.
func (s *Server) clockC() <-chan time.Time { return s.clock.timer.C }

// advanceClock steps the core with the ticks that elapsed since the last
// one it saw, so that its deadlines are right when an event follows a
// sleep.
func (s *Server) advanceClock(now time.Time) {
	t := uint64(now.Sub(s.clock.start) / s.clock.interval)
	if seen := s.core.Now(); t > seen {
		s.step(core.Tick{N: t - seen})
	}
}

// clockFired does the timed work that is due.
func (s *Server) clockFired(now time.Time) {
	s.clock.armed = time.Time{}
	s.clock.wakeups.Add(1)
	s.advanceClock(now)
	if s.adopted && !s.resumeDone && now.After(s.resumeAt) {
		s.resumeDeadline()
	}
}

// armClock sets the timer for the earliest pending timed work, or stops
// it when there is none.
func (s *Server) armClock(now time.Time) {
	c := &s.clock
	var at time.Time
	earliest := func(t time.Time) {
		if at.IsZero() || t.Before(at) {
			at = t
		}
	}
	if k, ok := s.core.NextTick(); ok {
		earliest(c.start.Add(time.Duration(k) * c.interval))
	}
	if s.adopted && !s.resumeDone {
		earliest(s.resumeAt.Add(time.Millisecond))
	}
	switch {
	case at.IsZero():
		if !c.armed.IsZero() {
			c.timer.Stop()
			c.armed = time.Time{}
		}
	case !at.Equal(c.armed):
		c.arms.Add(1)
		c.timer.Reset(max(at.Sub(now), 0))
		c.armed = at
	}
}
