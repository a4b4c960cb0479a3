package ownedsub_test

import (
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/parallax-ipc/parallax/internal/ownedpub"
	"github.com/parallax-ipc/parallax/internal/ownedsub"
	"github.com/parallax-ipc/parallax/ringbuf"
)

// OnIdle runs once, after Close, when the last held sample is released:
// and not while another goroutine is still in a Finished call, whose
// connection segment the caller unmaps only there (OnIdle lets the
// mappings go). Here the release of connection 1's sample finishes it and
// blocks in Finished; the release of connection 2's sample, the last one
// held, must leave OnIdle to the first when its Finished returns.
func TestOnIdleWaitsForFinished(t *testing.T) {
	t.Parallel()
	var idle atomic.Int32
	inFinished := make(chan struct{})
	unblock := make(chan struct{})
	var first atomic.Bool
	s := ownedsub.New(ownedsub.Options{
		OnIdle: func() { idle.Add(1) },
		Finished: func(c *ownedsub.Conn) {
			if first.CompareAndSwap(false, true) {
				close(inFinished)
				<-unblock
			}
		},
	})
	p1 := newPub(t, 1, ownedpub.Options{}, 64, 4)
	p2 := newPub(t, 2, ownedpub.Options{}, 64, 4)
	connect(t, p1, s, 1, ringbuf.DiscardOldest, 2, 2, 0)
	connect(t, p2, s, 2, ringbuf.DiscardOldest, 2, 2, 0)
	require.NoError(t, p1.publish(t, 32, 1))
	require.NoError(t, p2.publish(t, 32, 1))
	a, err := s.TryTake()
	require.NoError(t, err)
	b, err := s.TryTake()
	require.NoError(t, err)
	require.NotEqual(t, a.Conn(), b.Conn())

	s.Close()
	require.Zero(t, idle.Load(), "two samples held")
	released := make(chan error, 1)
	go func() { released <- a.Release() }() // finishes a's connection, blocks in Finished
	select {
	case <-inFinished:
	case <-time.After(10 * time.Second):
		t.Fatal("the first release never reached Finished")
	}
	require.NoError(t, b.Release()) // the last sample held
	require.Zero(t, idle.Load(), "OnIdle ran while a Finished call was still using its connection")
	close(unblock)
	require.NoError(t, <-released)
	require.EqualValues(t, 1, idle.Load())
}
