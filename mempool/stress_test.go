package mempool

import (
	"encoding/binary"
	"errors"
	"math/rand/v2"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/parallax-ipc/parallax"
	"github.com/parallax-ipc/parallax/internal/testutil"
)

// shared is a chunk handed to a reader goroutine, with the stamp the loaner
// wrote into it.
type shared struct {
	ref   parallax.ChunkRef
	stamp uint64
}

// TestStressLoanAddRefRelease runs loaners and readers against one small
// pool. Every loaner stamps each chunk it gets with a unique value and
// checks the stamp whenever it or a reader releases the chunk: a slot handed
// out twice would be overwritten (and flagged by the race detector too). At
// the end the pool must be 100% free.
func TestStressLoanAddRefRelease(t *testing.T) {
	t.Parallel()
	loaners, readers, iters := 6, 2, 20000
	if testing.Short() {
		loaners, iters = 3, 2000
	}
	const count = 48 // small, so loaners collide and hit exhaustion
	p := newPool(t, 1, Class{ChunkSize: 64, Count: count})
	seed := testutil.Seed(t)

	var loans, exhausted atomic.Uint64
	ch := make(chan shared, 16)
	var rwg sync.WaitGroup
	for range readers {
		rwg.Go(func() {
			for s := range ch {
				b, err := p.Payload(s.ref)
				if err != nil {
					t.Errorf("reader payload %v: %v", s.ref, err)
					continue
				}
				if got := binary.LittleEndian.Uint64(b); got != s.stamp {
					t.Errorf("reader: chunk %v stamp %#x, want %#x: slot handed out twice", s.ref, got, s.stamp)
				}
				if _, err := p.Release(s.ref); err != nil {
					t.Errorf("reader release %v: %v", s.ref, err)
				}
			}
		})
	}

	var lwg sync.WaitGroup
	for g := range loaners {
		lwg.Go(func() {
			rng := rand.New(rand.NewPCG(seed, uint64(g)))
			var held []shared
			check := func(s shared) {
				b, err := p.Payload(s.ref)
				if err != nil {
					t.Errorf("loaner payload %v: %v", s.ref, err)
					return
				}
				if got := binary.LittleEndian.Uint64(b); got != s.stamp {
					t.Errorf("loaner %d: chunk %v stamp %#x, want %#x: slot handed out twice", g, s.ref, got, s.stamp)
				}
			}
			for i := range iters {
				// Re-check every held chunk each round: widens the window in
				// which a slot handed out twice is caught.
				for _, s := range held {
					check(s)
				}
				switch op := rng.IntN(10); {
				case op < 5 && len(held) < 8: // loan and stamp
					r, err := p.Loan(uint16(g + 1))
					if err != nil {
						if !assertExhausted(t, err) {
							return
						}
						exhausted.Add(1)
						continue
					}
					loans.Add(1)
					s := shared{ref: r, stamp: uint64(g+1)<<32 | uint64(i)}
					b, _ := p.Payload(r)
					binary.LittleEndian.PutUint64(b, s.stamp)
					held = append(held, s)
				case op < 7 && len(held) > 0: // share with a reader
					s := held[rng.IntN(len(held))]
					check(s)
					if err := p.AddRef(s.ref, 1); err != nil {
						t.Errorf("addref %v: %v", s.ref, err)
						return
					}
					ch <- s
				case len(held) > 0: // release one
					k := rng.IntN(len(held))
					s := held[k]
					check(s)
					held[k] = held[len(held)-1]
					held = held[:len(held)-1]
					if _, err := p.Release(s.ref); err != nil {
						t.Errorf("release %v: %v", s.ref, err)
						return
					}
				}
			}
			for _, s := range held {
				check(s)
				if _, err := p.Release(s.ref); err != nil {
					t.Errorf("final release %v: %v", s.ref, err)
				}
			}
		})
	}
	lwg.Wait()
	close(ch)
	rwg.Wait()

	a := p.Audit()
	require.True(t, a.AllFree(), "%v", a)
	st := p.Stats()
	require.Equal(t, uint64(0), st.InUse)
	require.Equal(t, loans.Load(), st.Loans)
	require.Equal(t, exhausted.Load(), st.FailedLoans)
	require.LessOrEqual(t, st.HighWater, uint64(count))
	t.Logf("loans=%d exhausted=%d highwater=%d", st.Loans, st.FailedLoans, st.HighWater)
}

func assertExhausted(t *testing.T, err error) bool {
	if !isExhausted(err) {
		t.Errorf("loan: %v", err)
		return false
	}
	return true
}

func isExhausted(err error) bool {
	return err != nil && errors.Is(err, parallax.ErrPoolExhausted)
}

// TestStressDoubleRelease races many releases of the same refs: exactly as
// many succeed as there were holders, and the slot is freed exactly once.
func TestStressDoubleRelease(t *testing.T) {
	t.Parallel()
	rounds := 2000
	if testing.Short() {
		rounds = 200
	}
	p := newPool(t, 1, Class{ChunkSize: 64, Count: 4})
	const racers, holders = 4, 3
	for range rounds {
		r, err := p.Loan(1)
		require.NoError(t, err)
		require.NoError(t, p.AddRef(r, holders-1))
		var ok, freed atomic.Int32
		var wg sync.WaitGroup
		for range racers {
			wg.Go(func() {
				for range holders {
					f, err := p.Release(r)
					if err == nil {
						ok.Add(1)
						if f {
							freed.Add(1)
						}
					}
				}
			})
		}
		wg.Wait()
		require.Equal(t, int32(holders), ok.Load())
		require.Equal(t, int32(1), freed.Load())
	}
	require.True(t, p.Audit().AllFree())
}
