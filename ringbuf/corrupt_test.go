package ringbuf_test

import (
	"errors"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/parallax-ipc/parallax"
	"github.com/parallax-ipc/parallax/internal/testutil"
	"github.com/parallax-ipc/parallax/ringbuf"
)

// rawRing formats a ring in 8-byte aligned memory and returns the memory
// too, so a test can scribble on the index words as a corrupt peer would.
func rawRing(t testing.TB, capacity int, p ringbuf.Policy) (*ringbuf.Ring, []byte) {
	t.Helper()
	mem := ringbuf.BytesOf(make([]uint64, ringbuf.Size(capacity)/8))
	r, err := ringbuf.Format(mem, capacity, p)
	require.NoError(t, err)
	return r, mem
}

func head(pos, pops uint32) uint64 { return uint64(pos) | uint64(pops)<<32 }

func requireCorrupt(t *testing.T, err error, what string) {
	t.Helper()
	require.ErrorIs(t, err, ringbuf.ErrCorruptRing, what)
	require.ErrorIs(t, err, parallax.ErrCorrupt, what)
}

// TestCorruptProducerIndex: a tail the producer could never have written
// (more than a capacity ahead of head, behind head, garbage in the high
// half) makes pops fail with ErrCorruptRing and pop nothing, from a fresh
// consumer as well as from one whose view of tail is current; Len says 0
// and Check names the fault.
func TestCorruptProducerIndex(t *testing.T) {
	t.Parallel()
	const capacity = 8
	for name, c := range map[string]struct {
		tail func(t uint32) uint64
		want string
	}{
		"tail 4e9 ahead":        {func(t uint32) uint64 { return uint64(t + 4_000_000_000) }, "not within the capacity"},
		"tail capacity+1 ahead": {func(t uint32) uint64 { return uint64(t + capacity + 1) }, "not within the capacity"},
		"tail behind head":      {func(t uint32) uint64 { return uint64(t - 4) }, "not within the capacity"},
		"tail high bits":        {func(t uint32) uint64 { return uint64(t) | 1<<40 }, "bits set above"},
	} {
		for _, fresh := range []bool{false, true} {
			r, mem := rawRing(t, capacity, ringbuf.DiscardOldest)
			for i := range 5 {
				_, err := r.TryPush(ref(i + 1))
				require.NoError(t, err)
			}
			v, err := r.TryPop() // consumer's tail view is now 5, head 1
			require.NoError(t, err)
			require.Equal(t, ref(1), v)
			v, err = r.TryPop()
			require.NoError(t, err)
			require.Equal(t, ref(2), v)
			v, err = r.TryPop() // head 3: two entries left
			require.NoError(t, err)
			require.Equal(t, ref(3), v)
			ringbuf.StoreWord(mem, ringbuf.OffTail, c.tail(r.Tail()))
			popper := r
			if fresh {
				popper, err = ringbuf.Attach(mem)
				require.NoError(t, err)
			}
			// A consumer whose view still covers entries 4 and 5 pops
			// them (they were published); past them it reads tail and
			// must refuse. A fresh consumer refuses at once.
			for i := 0; ; i++ {
				require.Less(t, i, capacity, "%s: a pop loop over a corrupt ring must end", name)
				_, err = popper.TryPop()
				if err != nil {
					break
				}
			}
			requireCorrupt(t, err, name)
			require.Contains(t, err.Error(), c.want, name)
			requireCorrupt(t, r.Check(), name)
			require.Zero(t, r.Len(), name)
			_, err = popper.TryPop() // stays refused
			requireCorrupt(t, err, name)
		}
	}
}

// TestCorruptConsumerIndex: a head word the consumer could never have
// written (past tail, more than a capacity behind tail, moved backward)
// makes the producer's push fail with ErrCorruptRing where it reads head,
// instead of overwriting queued entries or discarding ones already popped.
func TestCorruptConsumerIndex(t *testing.T) {
	t.Parallel()
	const capacity = 4
	for _, policy := range []ringbuf.Policy{ringbuf.DiscardOldest, ringbuf.BlockProducer} {
		for name, c := range map[string]struct {
			head func(h ringbuf.HeadWord, t uint32) uint64
			want string
		}{
			"head past tail":      {func(h ringbuf.HeadWord, t uint32) uint64 { return head(t+1, h.Pops()+5) }, "not within the capacity"},
			"head far behind":     {func(h ringbuf.HeadWord, t uint32) uint64 { return head(t-4_000_000_000, h.Pops()) }, "not within the capacity"},
			"head 1e9 behind":     {func(h ringbuf.HeadWord, t uint32) uint64 { return head(t-1_000_000_000, h.Pops()) }, "not within the capacity"},
			"head one lap behind": {func(h ringbuf.HeadWord, t uint32) uint64 { return head(t-capacity-1, h.Pops()) }, "not within the capacity"},
			// The producer reloads head when the ring looks full, so a
			// head moved back by even one position is a capacity+1 behind.
			"head moved back by one": {func(h ringbuf.HeadWord, t uint32) uint64 { return head(h.Pos()-1, h.Pops()-1) }, "not within the capacity"},
		} {
			r, mem := rawRing(t, capacity, policy)
			for i := range capacity {
				_, err := r.TryPush(ref(i + 1))
				require.NoError(t, err)
			}
			for range 2 { // head 2, tail 4: the producer's view will be refreshed on the next push
				_, err := r.TryPop()
				require.NoError(t, err)
			}
			_, err := r.TryPush(ref(5)) // loads head (view full), sees room
			require.NoError(t, err)
			_, err = r.TryPush(ref(6)) // full again at head 2, tail 6
			require.NoError(t, err)
			ringbuf.StoreWord(mem, ringbuf.OffHead, c.head(r.Head(), r.Tail()))
			slots := make([]uint64, capacity)
			for i := range slots {
				slots[i] = ringbuf.LoadWord(mem, ringbuf.HeaderSize+8*i)
			}
			tail := r.Tail()
			d, err := r.TryPush(ref(7))
			requireCorrupt(t, err, name)
			require.Contains(t, err.Error(), c.want, "%v %s", policy, name)
			require.Equal(t, parallax.NilRef, d, "%v %s: nothing discarded", policy, name)
			require.Equal(t, tail, r.Tail(), "%v %s: nothing pushed", policy, name)
			for i := range slots {
				require.Equal(t, slots[i], ringbuf.LoadWord(mem, ringbuf.HeaderSize+8*i), "%v %s: slot %d untouched", policy, name, i)
			}
			require.True(t, r.Full(), "%v %s: a corrupt ring counts as full", policy, name)
		}
	}
}

// TestCorruptIndicesFuzz writes random words into a ring's index words
// while a consumer drains it and a producer pushes. Every pop must end with
// a ref somebody pushed, ErrEmpty or ErrCorruptRing; every push with
// success, ErrFull or ErrCorruptRing, and a discarded ref somebody pushed.
// Without the scribbler, a drain of whatever state it left pops at most a
// capacity of entries.
func TestCorruptIndicesFuzz(t *testing.T) {
	t.Parallel()
	rng := testutil.Rand(t)
	rounds := 200
	if testing.Short() {
		rounds = 40
	}
	for round := range rounds {
		capacity := 1 << rng.IntN(6)
		policy := ringbuf.DiscardOldest
		if rng.IntN(2) == 0 {
			policy = ringbuf.BlockProducer
		}
		r, mem := rawRing(t, capacity, policy)
		// Refs pushed are 1..maxRef; slots hold only those (or 0).
		const maxRef = 1 << 20
		valid := func(v parallax.ChunkRef) bool { return v >= 1 && v <= maxRef }
		seed := rng.Uint64()
		var stop atomic.Bool
		var wg sync.WaitGroup
		wg.Add(2)
		go func() { // the scribbler
			defer wg.Done()
			x := seed
			for !stop.Load() {
				x ^= x << 13
				x ^= x >> 7
				x ^= x << 17
				off := ringbuf.OffHead
				if x&1 == 0 {
					off = ringbuf.OffTail
				}
				v := x >> 8
				switch x >> 60 { // mostly plausible, sometimes wild
				case 0, 1, 2, 3, 4, 5, 6, 7, 8, 9:
					v = uint64(uint32(ringbuf.LoadWord(mem, off)) + uint32(x>>32)%uint32(4*capacity) - uint32(2*capacity))
				case 10:
					v = x
				}
				ringbuf.StoreWord(mem, off, v)
			}
		}()
		var pushErr error
		go func() { // the producer
			defer wg.Done()
			for i := 1; !stop.Load(); i = i%maxRef + 1 {
				d, err := r.TryPush(ref(i))
				switch {
				case err == nil || errors.Is(err, ringbuf.ErrFull) || errors.Is(err, ringbuf.ErrCorruptRing):
				default:
					pushErr = err
					return
				}
				if d != parallax.NilRef && !valid(d) {
					pushErr = errors.New("discarded a ref nobody pushed")
					return
				}
			}
		}()
		counts := map[string]int{}
		for range 20_000 {
			v, err := r.TryPop()
			switch {
			case err == nil:
				if !valid(v) && v != parallax.NilRef { // a slot never written holds 0
					stop.Store(true)
					wg.Wait()
					t.Fatalf("round %d: popped %v, which nobody pushed", round, v)
				}
				counts["ok"]++
			case err == ringbuf.ErrEmpty:
				counts["empty"]++
			case errors.Is(err, ringbuf.ErrCorruptRing) && errors.Is(err, parallax.ErrCorrupt):
				counts["corrupt"]++
			default:
				stop.Store(true)
				wg.Wait()
				t.Fatalf("round %d: pop: unexpected error %v", round, err)
			}
			if l := r.Len(); l < 0 || l > capacity {
				stop.Store(true)
				wg.Wait()
				t.Fatalf("round %d: Len %d outside [0, %d]", round, l, capacity)
			}
		}
		stop.Store(true)
		wg.Wait()
		require.NoError(t, pushErr, "round %d", round)
		// Quiescent now: whatever the scribbler left, a drain ends
		// within a capacity of pops.
		n := 0
		for {
			_, err := r.TryPop()
			if err != nil {
				require.True(t, err == ringbuf.ErrEmpty || errors.Is(err, ringbuf.ErrCorruptRing), "round %d: %v", round, err)
				break
			}
			n++
			require.LessOrEqual(t, n, capacity, "round %d: a drain popped more than the capacity", round)
		}
		if round == 0 {
			t.Logf("pops: %v", counts)
		}
	}
}
