package mempool

import (
	"sync"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/parallax-ipc/parallax"
)

func TestSetLoanPicksSmallestClass(t *testing.T) {
	t.Parallel()
	var s Set // zero value is ready
	_, err := s.Loan(1, 1)
	require.ErrorIs(t, err, ErrTooLarge)

	// Added out of order on purpose.
	require.NoError(t, s.Add(newPool(t, 3, Class{ChunkSize: 4096, Count: 2})))
	require.NoError(t, s.Add(newPool(t, 1, Class{ChunkSize: 128, Count: 2})))
	require.NoError(t, s.Add(newPool(t, 2, Class{ChunkSize: 1024, Count: 2})))
	require.ErrorIs(t, s.Add(newPool(t, 2, Class{ChunkSize: 64, Count: 1})), ErrDuplicatePool)

	var sizes []uint32
	for _, p := range s.Pools() {
		sizes = append(sizes, p.Class().ChunkSize)
	}
	require.Equal(t, []uint32{128, 1024, 4096}, sizes)

	for _, tc := range []struct {
		n    int
		pool uint32
	}{{0, 1}, {1, 1}, {128, 1}, {129, 2}, {1024, 2}, {1025, 3}, {4096, 3}} {
		r, err := s.Loan(tc.n, 1)
		require.NoError(t, err, "n=%d", tc.n)
		require.Equal(t, tc.pool, r.Pool(), "n=%d", tc.n)
		b, err := s.Payload(r)
		require.NoError(t, err)
		require.GreaterOrEqual(t, len(b), tc.n)
		_, err = s.Release(r)
		require.NoError(t, err)
	}
	_, err = s.Loan(4097, 1)
	require.ErrorIs(t, err, ErrTooLarge)

	// Exhausting the 128 class fails at once, without falling back.
	a, err := s.Loan(100, 1)
	require.NoError(t, err)
	b, err := s.Loan(100, 1)
	require.NoError(t, err)
	_, err = s.Loan(100, 1)
	require.ErrorIs(t, err, parallax.ErrPoolExhausted)
	require.Equal(t, uint64(1), s.Pool(1).Stats().FailedLoans)
	require.Equal(t, uint64(0), s.Pool(2).Stats().FailedLoans)

	// Dispatch by ref; unknown pools are invalid refs.
	require.NoError(t, s.AddRef(a, 1))
	require.NoError(t, s.Validate(a))
	require.NoError(t, s.SetMeta(a, Meta{Length: 3, Seq: 1}))
	m, err := s.Meta(a)
	require.NoError(t, err)
	require.Equal(t, uint64(3), m.Length)
	d, err := s.Data(a)
	require.NoError(t, err)
	require.Len(t, d, 3)
	for _, r := range []parallax.ChunkRef{a, a, b} {
		_, err := s.Release(r)
		require.NoError(t, err)
	}
	bogus := parallax.MakeRef(9, 0, 1)
	_, err = s.Release(bogus)
	require.ErrorIs(t, err, parallax.ErrInvalidRef)
	require.ErrorIs(t, s.AddRef(bogus, 1), parallax.ErrInvalidRef)
	require.ErrorIs(t, s.Validate(bogus), parallax.ErrInvalidRef)
	_, err = s.Payload(bogus)
	require.ErrorIs(t, err, parallax.ErrInvalidRef)
	_, err = s.Data(bogus)
	require.ErrorIs(t, err, parallax.ErrInvalidRef)
	_, err = s.Meta(bogus)
	require.ErrorIs(t, err, parallax.ErrInvalidRef)
	require.ErrorIs(t, s.SetMeta(bogus, Meta{}), parallax.ErrInvalidRef)
	require.Nil(t, s.Pool(60000))
	require.Len(t, s.Stats(), 3)
}

func TestSetGrowAndFallback(t *testing.T) {
	t.Parallel()
	s := NewSet(SetOptions{})
	require.NoError(t, s.Add(newPool(t, 1, Class{ChunkSize: 64, Count: 1})))
	require.NoError(t, s.Add(newPool(t, 5, Class{ChunkSize: 256, Count: 1})))
	a, err := s.Loan(64, 1)
	require.NoError(t, err)
	_, err = s.Loan(64, 1)
	require.ErrorIs(t, err, parallax.ErrPoolExhausted)

	// Growing the class (another pool of the same chunk size) adds room.
	require.NoError(t, s.Add(newPool(t, 2, Class{ChunkSize: 64, Count: 1})))
	b, err := s.Loan(64, 1)
	require.NoError(t, err)
	require.Equal(t, uint32(2), b.Pool())
	_, err = s.Loan(64, 1)
	require.ErrorIs(t, err, parallax.ErrPoolExhausted)
	require.Equal(t, uint64(2), s.Pool(1).Stats().FailedLoans, "failures count on the class's first pool")
	require.Equal(t, uint64(0), s.Pool(2).Stats().FailedLoans)

	// With AllowLarger, an exhausted class falls back to the next one.
	f := NewSet(SetOptions{AllowLarger: true})
	for _, p := range s.Pools() {
		require.NoError(t, f.Add(p))
	}
	c, err := f.Loan(64, 1)
	require.NoError(t, err)
	require.Equal(t, uint32(5), c.Pool())
	_, err = f.Loan(64, 1)
	require.ErrorIs(t, err, parallax.ErrPoolExhausted)
	for _, r := range []parallax.ChunkRef{a, b, c} {
		_, err := s.Release(r)
		require.NoError(t, err)
	}
}

// TestSetAddWhileLoaning grows a set while other goroutines loan from it.
func TestSetAddWhileLoaning(t *testing.T) {
	t.Parallel()
	s := NewSet(SetOptions{})
	require.NoError(t, s.Add(newPool(t, 0, Class{ChunkSize: 64, Count: 4})))
	const adds = 20
	pools := make([]*Pool, adds)
	for i := range pools {
		pools[i] = newPool(t, uint16(i+1), Class{ChunkSize: 64 * uint32(1+i%3), Count: 4})
	}
	var wg sync.WaitGroup
	stop := make(chan struct{})
	for range 3 {
		wg.Go(func() {
			for {
				select {
				case <-stop:
					return
				default:
				}
				r, err := s.Loan(64, 1)
				if err != nil {
					require.ErrorIs(t, err, parallax.ErrPoolExhausted)
					continue
				}
				_, err = s.Release(r)
				require.NoError(t, err)
			}
		})
	}
	for _, p := range pools {
		require.NoError(t, s.Add(p))
	}
	close(stop)
	wg.Wait()
	require.Len(t, s.Pools(), adds+1)
	for _, p := range s.Pools() {
		require.True(t, p.Audit().AllFree())
	}
}

// Remove forgets a pool: its refs stop validating, loans no longer reach
// it, its class goes when it was the last pool, and the other pools stay.
func TestSetRemove(t *testing.T) {
	t.Parallel()
	s := NewSet(SetOptions{})
	require.NoError(t, s.Add(newPool(t, 1, Class{ChunkSize: 64, Count: 1})))
	require.NoError(t, s.Add(newPool(t, 2, Class{ChunkSize: 64, Count: 1})))
	require.NoError(t, s.Add(newPool(t, 9, Class{ChunkSize: 4096, Count: 1})))
	big, err := s.Loan(4096, 1)
	require.NoError(t, err)
	_, err = s.Release(big)
	require.NoError(t, err)

	require.Nil(t, s.Remove(3), "no such pool")
	p := s.Remove(9)
	require.NotNil(t, p)
	require.Equal(t, uint16(9), p.ID())
	require.Nil(t, s.Pool(9))
	require.Nil(t, s.Remove(9), "removed already")
	require.ErrorIs(t, s.Validate(big), parallax.ErrInvalidRef)
	_, err = s.Loan(4096, 1)
	require.ErrorIs(t, err, ErrTooLarge, "the class went with its only pool")

	require.NotNil(t, s.Remove(1))
	r, err := s.Loan(64, 1)
	require.NoError(t, err)
	require.Equal(t, uint32(2), r.Pool(), "the class keeps its other pool")
	require.Len(t, s.Pools(), 1)
}
