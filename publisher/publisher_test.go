package publisher_test

import (
	"context"
	"errors"
	"os"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/parallax-ipc/parallax"
	"github.com/parallax-ipc/parallax/internal/routertest"
	"github.com/parallax-ipc/parallax/publisher"
)

// Loans made before Close stay safe to publish or release afterwards: the
// publish is refused with os.ErrClosed and gives the chunk back, a second
// use of the same chunk is an error (not a crash on unmapped memory), and
// the pools end free.
func TestLoanOutlivesClose(t *testing.T) {
	t.Parallel()
	testLoanOutlivesClose(t, routertest.Small)
}

func testLoanOutlivesClose(t *testing.T, cfg string) {
	srv := routertest.Start(t, cfg)
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	pub, err := publisher.New(ctx, "late", publisher.Options{Socket: srv.SocketPath()})
	require.NoError(t, err)
	a, err := pub.Loan(64)
	require.NoError(t, err)
	b, err := pub.Loan(64)
	require.NoError(t, err)
	copy(a.Bytes(), "still mapped")
	require.NoError(t, pub.Close())

	_, err = pub.Loan(64)
	require.ErrorIs(t, err, os.ErrClosed)
	require.Equal(t, "still mapped", string(a.Bytes()[:12]), "a loan's bytes must stay mapped until it is given back")
	require.ErrorIs(t, pub.Publish(a), os.ErrClosed)
	require.NoError(t, pub.Release(b)) // the last loan: the runtime goes now
	// Stale chunks after everything was let go: errors, no memory access.
	require.ErrorIs(t, pub.Publish(a), os.ErrClosed)
	require.ErrorIs(t, pub.Release(b), os.ErrClosed)
}

// Publish of a chunk that is not a current loan is refused.
func TestPublishTwice(t *testing.T) {
	t.Parallel()
	testPublishTwice(t, routertest.Small)
}

func testPublishTwice(t *testing.T, cfg string) {
	srv := routertest.Start(t, cfg)
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	pub, err := publisher.New(ctx, "twice", publisher.Options{Socket: srv.SocketPath()})
	require.NoError(t, err)
	defer pub.Close()
	c, err := pub.Loan(8)
	require.NoError(t, err)
	require.NoError(t, pub.Publish(c))
	err = pub.Publish(c)
	require.True(t, errors.Is(err, parallax.ErrNotHeld), "got %v", err)
	require.Error(t, pub.Release(c))
}

// Close succeeds when the router is gone: the final counter report and
// ClosePublisher find the connection closed and give up at once.
func TestCloseWithoutRouter(t *testing.T) {
	t.Parallel()
	srv := routertest.Start(t, routertest.Small)
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	pub, err := publisher.New(ctx, "orphan", publisher.Options{Socket: srv.SocketPath(), MaxPayload: 64})
	require.NoError(t, err)
	require.NoError(t, pub.Send([]byte("before the router went")))
	require.NoError(t, srv.Close())
	require.NoError(t, pub.Close())
	require.EqualValues(t, 1, pub.Stats().Published)
}
