package publisher_test

import (
	"context"
	"os"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/parallax-ipc/parallax/internal/routertest"
	"github.com/parallax-ipc/parallax/publisher"
	"github.com/parallax-ipc/parallax/subscriber"
)

// waitSleeping waits until n LoanWait calls of pub are asleep.
func waitSleeping(t *testing.T, pub *publisher.Publisher, n int) {
	t.Helper()
	require.Eventually(t, func() bool { return publisher.LoanWaitSleeping(pub) == n }, 10*time.Second, 100*time.Microsecond,
		"LoanWait never went to sleep")
}

// A LoanWait asleep on a subscriber's return queue while that subscriber
// closes: the connection's segment is unmapped only after the LoanWait
// left its futex word, and the LoanWait then gets the chunks the
// connection held back. (It faulted on the unmapped segment before.)
func TestLoanWaitWhileSubscriberLeaves(t *testing.T) {
	t.Parallel()
	srv := routertest.Start(t, "")
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	idle, err := subscriber.New(ctx, "lw/other", subscriber.Options{Socket: srv.SocketPath()})
	require.NoError(t, err)
	defer idle.Close()
	for round := range 5 {
		sub, err := subscriber.New(ctx, "lw/leave", subscriber.Options{Socket: srv.SocketPath(), QueueCapacity: 4})
		require.NoError(t, err)
		pub, err := publisher.New(ctx, "lw/leave", publisher.Options{Socket: srv.SocketPath(), MaxPayload: 64})
		require.NoError(t, err)
		require.NoError(t, pub.WaitForSubscribers(ctx, 1))
		require.NoError(t, pub.Send([]byte("queued, never taken")))
		var held []publisher.Chunk
		for pub.Stats().Memory.Free > 0 {
			c, err := pub.Loan(64)
			require.NoError(t, err)
			held = append(held, c)
		}
		done := make(chan error, 1)
		go func() {
			c, err := pub.LoanWait(ctx, 64)
			if err == nil {
				err = pub.Release(c)
			}
			done <- err
		}()
		waitSleeping(t, pub, 1)
		require.NoError(t, sub.Close())
		select {
		case err := <-done:
			require.NoError(t, err, "round %d: the removed connection's chunk comes back to LoanWait", round)
		case <-ctx.Done():
			t.Fatalf("round %d: LoanWait still asleep after its subscriber left", round)
		}
		for _, c := range held {
			require.NoError(t, pub.Release(c))
		}
		require.Zero(t, pub.Stats().Memory.Loans)
		require.NoError(t, pub.Close())
	}
}

// Close ends a LoanWait waiting at MaxLoans with os.ErrClosed at once,
// instead of leaving it (and the publisher's memory) until another loan
// ends.
func TestLoanWaitAtMaxLoansEndsAtClose(t *testing.T) {
	t.Parallel()
	srv := routertest.Start(t, "")
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	pub, err := publisher.New(ctx, "lw/max", publisher.Options{Socket: srv.SocketPath(), MaxLoans: 1, MaxPayload: 64})
	require.NoError(t, err)
	held, err := pub.Loan(64)
	require.NoError(t, err)
	done := make(chan error, 1)
	go func() {
		c, err := pub.LoanWait(ctx, 64)
		if err == nil {
			_ = pub.Release(c)
		}
		done <- err
	}()
	waitSleeping(t, pub, 1)
	require.NoError(t, pub.Close())
	select {
	case err := <-done:
		require.ErrorIs(t, err, os.ErrClosed)
	case <-ctx.Done():
		t.Fatal("LoanWait at MaxLoans still waiting after Close")
	}
	require.NoError(t, pub.Release(held))
}
