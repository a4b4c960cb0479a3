package subscriber

import (
	"fmt"
	"sync"
	"time"
)

// DebugOwned describes a subscriber's owned-model state, for test failure
// messages.
func DebugOwned(s *Subscriber) string {
	o := s.own.Load()
	if o == nil {
		return "shared"
	}
	o.mu.Lock()
	defer o.mu.Unlock()
	out := fmt.Sprintf("%+v\n", o.eng.Stats())
	for id, oc := range o.conns {
		out += fmt.Sprintf("conn %d added=%v seg=%v c=%v segs=%v", id, oc.added != nil, oc.seg != nil, oc.c != nil, oc.segs)
		if oc.c != nil {
			out += fmt.Sprintf(" %+v", oc.c.Stats())
		}
		if oc.seg != nil {
			out += fmt.Sprintf(" ring len %d pubsegs %d", oc.seg.Conn().DataRing().Len(), len(oc.seg.Publisher().Segments()))
		}
		out += "\n"
	}
	return out
}

// ForgetDataSegment makes s behave as if the grant of data segment index
// of publisher pub had never arrived: out of its connections and out of
// the runtime's read-only table (a test seam for GetDataSegment).
func ForgetDataSegment(s *Subscriber, pub uint32, index uint16) {
	o := s.own.Load()
	o.mu.Lock()
	for _, oc := range o.conns {
		if oc.c != nil && oc.c.PubID() == pub && oc.segs[index] {
			_, _ = o.eng.RemoveSegment(oc.c, index)
			delete(oc.segs, index)
		}
	}
	o.mu.Unlock()
	s.rt.ForgetDataSegment(pub, index)
}

// SegmentAsks returns the GetDataSegment requests s sent.
func SegmentAsks(s *Subscriber) uint64 { return s.own.Load().asks.Load() }

// SegmentAnswers returns the GetDataSegment replies s received.
func SegmentAnswers(s *Subscriber) uint64 { return s.own.Load().answered.Load() }

// HoldDataSegments makes s's handling of every DataSegmentAdded push (and
// so the process's push dispatch) wait until release is closed: a test
// seam for a grant still queued when a ref names its segment.
func HoldDataSegments(s *Subscriber, release <-chan struct{}) {
	h := func() { <-release }
	s.own.Load().segHold.Store(&h)
}

// HoldDataSegmentsEntered is HoldDataSegments that also closes entered
// when the first hold begins.
func HoldDataSegmentsEntered(s *Subscriber, entered chan<- struct{}, release <-chan struct{}) {
	var once sync.Once
	h := func() {
		once.Do(func() { close(entered) })
		<-release
	}
	s.own.Load().segHold.Store(&h)
}

// HoldClose makes s's Close stop once its engine is closed and its takes
// are over, before it tells the router: before its endpoint unregisters
// (afterUnregister false) or after. It closes reached there and waits
// until release is closed (a test seam for pushes that arrive while a
// subscriber closes).
func HoldClose(s *Subscriber, afterUnregister bool, reached chan<- struct{}, release <-chan struct{}) {
	want := 0
	if afterUnregister {
		want = 1
	}
	h := func(stage int) {
		if stage == want {
			close(reached)
			<-release
		}
	}
	s.closeHold.Store(&h)
}

// Held returns the samples of s taken and not yet released.
func Held(s *Subscriber) int { return s.own.Load().eng.Stats().Held }

// WaitSleeping reports whether a waiter (Take or a wait set) announced a
// sleep on one of s's connections' data wake words.
func WaitSleeping(s *Subscriber) bool {
	o := s.own.Load()
	o.mu.Lock()
	defer o.mu.Unlock()
	for _, oc := range o.conns {
		if oc.seg != nil && !oc.done && oc.seg.Conn().DataWake().Sleeping() {
			return true
		}
	}
	return false
}

// SetWaitSetSlice sets the bound of one sleep of ws (ownedSlice): a test
// with a slice far longer than itself sees a wait end only by a wake.
func SetWaitSetSlice(ws *WaitSet, d time.Duration) { ws.oslice = d }
