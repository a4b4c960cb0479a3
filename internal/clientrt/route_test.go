package clientrt

import (
	"sync/atomic"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/parallax-ipc/parallax/internal/wire"
)

// slowSub is a subscriber endpoint whose ConnectionRemoved blocks until
// let is closed. It releases its connections itself, and records each
// release and whether one came while its ConnectionRemoved still ran.
type slowSub struct {
	entered, let chan struct{}
	busy         atomic.Bool
	releases     atomic.Int32
	early        atomic.Bool
}

func (s *slowSub) ConnectionAdded(*wire.ConnectionAdded) {}

func (s *slowSub) ConnectionRemoved(*wire.ConnectionRemoved) {
	s.busy.Store(true)
	close(s.entered)
	<-s.let
	s.busy.Store(false)
}

func (s *slowSub) ReleasesItself(*wire.ConnectionRemoved) bool {
	s.releases.Add(1)
	if s.busy.Load() {
		s.early.Store(true)
	}
	return true
}

type nopEndpoint struct{}

func (nopEndpoint) ConnectionAdded(*wire.ConnectionAdded)     {}
func (nopEndpoint) ConnectionRemoved(*wire.ConnectionRemoved) {}

// TestHeldPushReleasedAfterEveryDelivery: a push concerning both ends of a
// connection in this process, held for the publisher (its Create in
// flight) while it is delivered to the subscriber, is released (the ring
// let go of; for a connection grant, the reference that keeps the
// publisher's read-only table) only once that delivery returned, also when
// the publisher registers, or the Create ends, during it. register and
// EndCreate used to release it at once: a grant's subscriber then attached
// to a read-only table the runtime had dropped, and a GetDataSegment reply
// for it was thrown away (TestOwnedMissedSegmentRecovered timed out).
func TestHeldPushReleasedAfterEveryDelivery(t *testing.T) {
	for _, c := range []struct {
		name   string
		during func(rt *Runtime)
	}{
		{"publisher registers", func(rt *Runtime) { rt.RegisterPublisher(1, nopEndpoint{}) }},
		{"create ends", func(rt *Runtime) { rt.EndCreate() }},
	} {
		t.Run(c.name, func(t *testing.T) {
			rt := ownedRuntime()
			sub := &slowSub{entered: make(chan struct{}), let: make(chan struct{})}
			rt.RegisterSubscriber(2, sub)
			rt.BeginCreate() // the publisher's
			routed := make(chan struct{})
			go func() {
				defer close(routed)
				rt.route(&wire.ConnectionRemoved{ConnID: 1, PubID: 1, SubID: 2})
			}()
			<-sub.entered
			c.during(rt)
			require.Zero(t, sub.releases.Load(), "released while the subscriber's delivery runs")
			close(sub.let)
			<-routed
			require.EqualValues(t, 1, sub.releases.Load(), "releases once both sides are done")
			require.False(t, sub.early.Load())
		})
	}
}

// closingPub is a publisher endpoint that records the pushes it gets, in
// order.
type closingPub struct{ got []string }

func (p *closingPub) ConnectionAdded(*wire.ConnectionAdded)     { p.got = append(p.got, "added") }
func (p *closingPub) ConnectionRemoved(*wire.ConnectionRemoved) { p.got = append(p.got, "removed") }
func (p *closingPub) ConnectionClosing(*wire.ConnectionClosing) { p.got = append(p.got, "closing") }

// TestClosingHeldForCreatingPublisher: a ConnectionClosing that arrives
// before its publisher registered (its Create in flight: the router
// connected it to a subscriber that closed meanwhile) is held and
// replayed after the connection's earlier pushes, like the other
// connection pushes. It used to be dropped: the publisher then delivered
// to the closed subscriber's ring (a block-producer publisher waited on
// it) until the connection was removed.
func TestClosingHeldForCreatingPublisher(t *testing.T) {
	rt := ownedRuntime()
	rt.BeginCreate() // the publisher's
	rt.onPush(&wire.ConnectionAdded{ConnID: 1, PubID: 1, SubID: 2}, nil)
	rt.onPush(&wire.ConnectionClosing{ConnID: 1, PubID: 1, SubID: 2}, nil)
	p := &closingPub{}
	rt.RegisterPublisher(1, p)
	rt.EndCreate()
	require.Equal(t, []string{"added", "closing"}, p.got)
}
