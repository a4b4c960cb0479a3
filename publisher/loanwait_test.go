package publisher_test

import (
	"context"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/parallax-ipc/parallax"
	"github.com/parallax-ipc/parallax/internal/routertest"
	"github.com/parallax-ipc/parallax/publisher"
)

// LoanWait at MaxLoans waits for another goroutine of this process to
// publish or release one of its loans (no subscriber involved), and gives
// up with the context: a producer goroutine can loan ahead of a publishing
// one without polling.
func TestOwnedLoanWaitMaxLoans(t *testing.T) {
	t.Parallel()
	srv := routertest.Start(t, routertest.Owned)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	pub, err := publisher.New(ctx, "loanwait/max", publisher.Options{Socket: srv.SocketPath(), MaxLoans: 2, MaxPayload: 64})
	require.NoError(t, err)
	defer pub.Close()
	a, err := pub.Loan(64)
	require.NoError(t, err)
	b, err := pub.Loan(64)
	require.NoError(t, err)
	_, err = pub.Loan(64)
	require.ErrorIs(t, err, parallax.ErrLimit, "Loan still fails at once")

	short, cancelShort := context.WithTimeout(ctx, 20*time.Millisecond)
	_, err = pub.LoanWait(short, 64)
	cancelShort()
	require.ErrorIs(t, err, parallax.ErrTimeout)
	require.ErrorIs(t, err, context.DeadlineExceeded)
	require.EqualValues(t, 2, pub.Stats().Loans)

	// wait starts a LoanWait, ends a loan with end and returns the chunk
	// LoanWait got.
	wait := func(end func() error) publisher.Chunk {
		got := make(chan publisher.Chunk, 1)
		errc := make(chan error, 1)
		go func() {
			c, err := pub.LoanWait(ctx, 64)
			if err != nil {
				errc <- err
				return
			}
			got <- c
		}()
		require.NoError(t, end())
		select {
		case c := <-got:
			require.EqualValues(t, 2, pub.Stats().Loans)
			return c
		case err := <-errc:
			t.Fatalf("LoanWait at MaxLoans: %v", err)
		case <-ctx.Done():
			t.Fatal("LoanWait did not wake when a loan ended")
		}
		return publisher.Chunk{}
	}
	a = wait(func() error { return pub.Publish(a) }) // a publish ends a loan
	b = wait(func() error { return pub.Release(b) }) // so does a release
	require.NoError(t, pub.Release(b))
	require.NoError(t, pub.Release(a))
}
