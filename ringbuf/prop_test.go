package ringbuf_test

import (
	"errors"
	"fmt"
	"sync"
	"testing"

	"github.com/parallax-ipc/parallax"
	"github.com/parallax-ipc/parallax/internal/testutil"
	"github.com/parallax-ipc/parallax/ringbuf"
)

// model is the deliberately simple reference: a mutex and a slice.
type model struct {
	mu      sync.Mutex
	cap     int
	policy  ringbuf.Policy
	q       []parallax.ChunkRef
	dropped uint64
	pops    uint32
}

func (m *model) push(v parallax.ChunkRef) (parallax.ChunkRef, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	var d parallax.ChunkRef
	if len(m.q) == m.cap {
		if m.policy == ringbuf.BlockProducer {
			return parallax.NilRef, ringbuf.ErrFull
		}
		d, m.q = m.q[0], m.q[1:]
		m.dropped++
	}
	m.q = append(m.q, v)
	return d, nil
}

func (m *model) pop() (parallax.ChunkRef, bool) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if len(m.q) == 0 {
		return parallax.NilRef, false
	}
	v := m.q[0]
	m.q = m.q[1:]
	m.pops++
	return v, true
}

// TestPropertyAgainstModel runs random operation sequences on a ring and on
// the model and requires identical observable behaviour after every step.
func TestPropertyAgainstModel(t *testing.T) {
	t.Parallel()
	rng := testutil.Rand(t)
	runs, steps := 300, 2000
	if testing.Short() {
		runs, steps = 40, 500
	}
	for run := range runs {
		capacity := 1 << rng.IntN(6)
		policy := ringbuf.DiscardOldest
		if rng.IntN(2) == 0 {
			policy = ringbuf.BlockProducer
		}
		r := newRing(t, capacity, policy)
		m := &model{cap: capacity, policy: policy}
		next := 1
		// Bias towards pushes or pops per run so full and empty rings both
		// occur often.
		pushBias := 20 + rng.IntN(60)
		for step := range steps {
			where := func() string {
				return fmt.Sprintf("run %d step %d (cap %d, %v)", run, step, capacity, policy)
			}
			switch op := rng.IntN(100); {
			case op < pushBias:
				v := ref(next)
				next++
				gotD, gotErr := r.TryPush(v)
				wantD, wantErr := m.push(v)
				if !errors.Is(gotErr, wantErr) || gotD != wantD {
					t.Fatalf("%s: push = (%v, %v), want (%v, %v)", where(), gotD, gotErr, wantD, wantErr)
				}
			case op < 97:
				var got parallax.ChunkRef
				var ok bool
				got, ok = popOK(r.TryPop())
				want, wantOK := m.pop()
				if ok != wantOK || got != want {
					t.Fatalf("%s: pop = (%v, %v), want (%v, %v)", where(), got, ok, want, wantOK)
				}
			default:
				// Observers.
			}
			if r.Len() != len(m.q) || r.Dropped() != m.dropped || r.Head().Pops() != m.pops {
				t.Fatalf("%s: len/dropped/pops = %d/%d/%d, want %d/%d/%d", where(),
					r.Len(), r.Dropped(), r.Head().Pops(), len(m.q), m.dropped, m.pops)
			}
		}
	}
}
