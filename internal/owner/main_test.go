package owner

import (
	"errors"
	"fmt"
	"testing"

	"github.com/parallax-ipc/parallax"
	"github.com/parallax-ipc/parallax/internal/testutil"
)

func TestMain(m *testing.M) { testutil.Main(m) }

// checkInvariants verifies the Tracker's internal accounting against
// itself: per-chunk fan-out against loan, history and connection bits, the
// totals, the free stacks and every connection's count.
func checkInvariants(t *Tracker) error {
	fan := make([]uint32, len(t.chunks))
	inHist := make([]bool, len(t.chunks))
	for _, idx := range t.History(nil) {
		if inHist[idx] {
			return fmt.Errorf("chunk %d twice in history", idx)
		}
		inHist[idx] = true
		fan[idx]++
	}
	loans := 0
	for i, ch := range t.chunks {
		if ch.state == stateLoaned {
			fan[i]++
			loans++
		}
		if ch.hist != inHist[i] {
			return fmt.Errorf("chunk %d: hist flag %v, in history ring %v", i, ch.hist, inHist[i])
		}
	}
	outstanding := 0
	for _, c := range t.conns {
		n := 0
		for i := range t.chunks {
			if c.delivered.has(uint32(i)) {
				fan[i]++
				n++
			}
		}
		if n != c.outstanding || n > c.bound {
			return fmt.Errorf("connection %d: %d bits set, outstanding %d, bound %d", c.id, n, c.outstanding, c.bound)
		}
		if c.state == connGone {
			return fmt.Errorf("connection %d gone but still tracked", c.id)
		}
		outstanding += n
	}
	units, inUse := 0, 0
	onFree := make([]bool, len(t.chunks))
	free := 0
	for ci, c := range t.classes {
		for _, idx := range c.free {
			if onFree[idx] {
				return fmt.Errorf("chunk %d twice on free stacks", idx)
			}
			onFree[idx] = true
			if int(t.segs[t.chunks[idx].seg].class) != ci {
				return fmt.Errorf("chunk %d on the free stack of class %d", idx, ci)
			}
		}
		free += len(c.free)
	}
	for i, ch := range t.chunks {
		if ch.fanout != fan[i] {
			return fmt.Errorf("chunk %d: fanout %d, units found %d", i, ch.fanout, fan[i])
		}
		if (ch.fanout == 0) != onFree[i] || (ch.state == stateFree) != onFree[i] {
			return fmt.Errorf("chunk %d: fanout %d, state %d, on free stack %v", i, ch.fanout, ch.state, onFree[i])
		}
		if ch.state != stateFree && ch.gen == 0 {
			return fmt.Errorf("chunk %d in use with generation 0", i)
		}
		units += int(ch.fanout)
		if ch.fanout > 0 {
			inUse++
		}
	}
	s := t.Stats()
	switch {
	case s.Loans != loans || s.Outstanding != outstanding || s.History != len(t.History(nil)):
		return fmt.Errorf("stats %+v: counted loans %d, outstanding %d", s, loans, outstanding)
	case s.Units != units || s.Units != s.Loans+s.History+s.Outstanding:
		return fmt.Errorf("stats %+v: counted units %d", s, units)
	case s.InUse != inUse || s.InUse != s.Chunks-s.Free || s.Free != free:
		return fmt.Errorf("stats %+v: counted in use %d, free %d", s, inUse, free)
	case s.HighWater < s.InUse:
		return fmt.Errorf("stats %+v: high water below in use", s)
	}
	return nil
}

// kind classifies a Tracker error for comparison with the model.
func kind(err error) string {
	var re *ReturnError
	switch {
	case err == nil:
		return ""
	case errors.As(err, &re):
		switch {
		case !errors.Is(err, parallax.ErrInvalidRef):
			return "return error not matching ErrInvalidRef"
		case re.Reason == parallax.ErrNotHeld:
			return "notheld"
		case re.Reason == parallax.ErrStaleRef:
			return "stale"
		case re.Reason == parallax.ErrInvalidRef:
			return "invalid"
		}
	case errors.Is(err, ErrClass):
		return "class"
	case errors.Is(err, parallax.ErrLimit):
		return "limit"
	case errors.Is(err, parallax.ErrPoolExhausted):
		return "exhausted"
	case errors.Is(err, ErrConnClosed):
		return "closed"
	case errors.Is(err, ErrNotLoaned):
		return "notloaned"
	case errors.Is(err, ErrDelivered):
		return "delivered"
	case errors.Is(err, ErrBound):
		return "bound"
	case errors.Is(err, ErrSegment):
		return "segment"
	}
	return "unknown: " + err.Error()
}
