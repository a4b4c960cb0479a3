package subscriber_test

import (
	"bytes"
	"context"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/parallax-ipc/parallax"
	"github.com/parallax-ipc/parallax/internal/routertest"
	"github.com/parallax-ipc/parallax/publisher"
	"github.com/parallax-ipc/parallax/subscriber"
)

// growPair starts an owned router and a subscriber then a publisher of
// topic, connected.
func growPair(t *testing.T, topic string, po publisher.Options, so subscriber.Options) (*publisher.Publisher, *subscriber.Subscriber) {
	t.Helper()
	srv := routertest.Start(t, routertest.Owned)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	so.Socket, po.Socket = srv.SocketPath(), srv.SocketPath()
	sub, err := subscriber.New(ctx, topic, so)
	require.NoError(t, err)
	t.Cleanup(func() { sub.Close() })
	pub, err := publisher.New(ctx, topic, po)
	require.NoError(t, err)
	t.Cleanup(func() { pub.Close() })
	require.NoError(t, pub.WaitForSubscribers(ctx, 1))
	return pub, sub
}

// pattern fills b with a pattern of seed.
func pattern(b []byte, seed byte) {
	for i := range b {
		b[i] = seed + byte(i*7)
	}
}

// sendCheck publishes a patterned chunk c and takes it back through sub,
// checking every byte.
func sendCheck(t *testing.T, pub *publisher.Publisher, sub *subscriber.Subscriber, c publisher.Chunk, seed byte) {
	t.Helper()
	pattern(c.Bytes(), seed)
	want := bytes.Clone(c.Bytes())
	require.NoError(t, pub.Publish(c))
	x, err := sub.TakeTimeout(10 * time.Second)
	require.NoError(t, err, subscriber.DebugOwned(sub))
	require.True(t, bytes.Equal(want, x.Bytes()), "content of a %d-byte sample", len(want))
	require.NoError(t, x.Release())
}

// A loan that finds the class exhausted grows it: the router adds a
// segment, the publisher maps it before handing out the chunk, and the
// subscriber (here reading a read-only twin) reads samples of it.
func TestOwnedGrowOnExhaustion(t *testing.T) {
	t.Parallel()
	pub, sub := growPair(t, "grow", publisher.Options{MaxPayload: 64}, subscriber.Options{})
	st := pub.Stats().Memory
	require.Equal(t, 1, st.Segments)
	held := make([]publisher.Chunk, 0, st.Chunks)
	for range st.Chunks {
		c, err := pub.Loan(64)
		require.NoError(t, err)
		held = append(held, c)
	}
	c, err := pub.Loan(64)
	require.NoError(t, err, "a loan beyond the first segment grows")
	require.EqualValues(t, 1, c.Ref().Pool(), "the chunk is in the growth segment")
	st = pub.Stats().Memory
	require.Equal(t, 2, st.Segments)
	require.EqualValues(t, 1, st.Grown)
	sendCheck(t, pub, sub, c, 3)
	for _, h := range held {
		require.NoError(t, pub.Release(h))
	}
}

// A loan larger than the class gets a dedicated segment, which later
// loans reuse (no segment per loan); once it stayed free for RetireAfter
// it is retired, and a later large loan gets one again (index reuse).
func TestOwnedDedicatedReuseRetire(t *testing.T) {
	t.Parallel()
	const size = 512 << 10
	pub, sub := growPair(t, "dedicated", publisher.Options{RetireAfter: 50 * time.Millisecond}, subscriber.Options{})
	for i := range 40 {
		c, err := pub.Loan(size)
		require.NoError(t, err)
		require.NotZero(t, c.Ref().Pool(), "a dedicated segment")
		sendCheck(t, pub, sub, c, byte(i))
	}
	st := pub.Stats().Memory
	require.EqualValues(t, 1, st.Grown, "the dedicated segment is reused: %+v", st)

	require.Eventually(t, func() bool {
		st := pub.Stats().Memory
		return st.Retired == 1 && st.Segments == 1
	}, 10*time.Second, time.Millisecond, "the idle dedicated segment is retired")

	c, err := pub.Loan(size)
	require.NoError(t, err)
	sendCheck(t, pub, sub, c, 99)
	st = pub.Stats().Memory
	require.EqualValues(t, 2, st.Grown)
	require.Equal(t, 2, st.Segments)
}

// A loan whose segment would break a router limit fails with an error
// wrapping parallax.ErrLimit that names the limit.
func TestOwnedGrowLimit(t *testing.T) {
	t.Parallel()
	pub, _ := growPair(t, "growlimit", publisher.Options{}, subscriber.Options{})
	_, err := pub.Loan(4 << 20) // routertest's max_message_size is 1 MiB
	require.ErrorIs(t, err, parallax.ErrLimit)
	require.ErrorContains(t, err, "max_message_size")
	require.Zero(t, pub.Stats().Memory.Loans)
}

// LoanWait honours its context while every chunk is loaned or held by the
// subscriber, and wakes when the subscriber returns one: it does not grow.
func TestOwnedLoanWait(t *testing.T) {
	t.Parallel()
	pub, sub := growPair(t, "loanwait", publisher.Options{MaxPayload: 64}, subscriber.Options{MaxHeld: 4})
	var samples []subscriber.Sample
	for i := range 4 {
		require.NoError(t, pub.Send([]byte{byte(i)}))
		x, err := sub.TakeTimeout(10 * time.Second)
		require.NoError(t, err)
		samples = append(samples, x)
	}
	st := pub.Stats().Memory
	var held []publisher.Chunk
	for range st.Free {
		c, err := pub.Loan(64)
		require.NoError(t, err)
		held = append(held, c)
	}

	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	_, err := pub.LoanWait(ctx, 64)
	cancel()
	require.ErrorIs(t, err, context.DeadlineExceeded)
	require.ErrorIs(t, err, parallax.ErrTimeout)

	got := make(chan error, 1)
	go func() {
		ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
		defer cancel()
		c, err := pub.LoanWait(ctx, 64)
		if err == nil {
			err = pub.Release(c)
		}
		got <- err
	}()
	require.NoError(t, samples[0].Release())
	select {
	case err := <-got:
		require.NoError(t, err)
	case <-time.After(20 * time.Second):
		t.Fatal("LoanWait did not wake on a return")
	}
	require.Zero(t, pub.Stats().Memory.Grown, "LoanWait waited instead of growing")
	for _, x := range samples[1:] {
		require.NoError(t, x.Release())
	}
	for _, c := range held {
		require.NoError(t, pub.Release(c))
	}
}

// LoanWait with a chunk free allocates nothing.
func TestOwnedLoanWaitAllocs(t *testing.T) {
	// Not parallel: testing.AllocsPerRun refuses parallel tests.
	pub, _ := growPair(t, "loanwaitallocs", publisher.Options{MaxPayload: 64}, subscriber.Options{})
	ctx := context.Background()
	allocs := testing.AllocsPerRun(200, func() {
		c, err := pub.LoanWait(ctx, 64)
		if err != nil {
			panic(err)
		}
		if err := pub.Release(c); err != nil {
			panic(err)
		}
	})
	require.Zero(t, allocs)
}

// A subscriber that missed a data segment's grant asks the router for it
// (GetDataSegment) when a ref names it, once, and then reads the sample.
func TestOwnedMissedSegmentRecovered(t *testing.T) {
	t.Parallel()
	pub, sub := growPair(t, "missed", publisher.Options{MaxPayload: 64}, subscriber.Options{})
	subscriber.ForgetDataSegment(sub, pub.ID(), 0)
	for i := range 3 {
		c, err := pub.Loan(64)
		require.NoError(t, err)
		sendCheck(t, pub, sub, c, byte(i))
	}
	require.EqualValues(t, 1, subscriber.SegmentAsks(sub))
}
