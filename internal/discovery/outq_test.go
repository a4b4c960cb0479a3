package discovery

import (
	"errors"
	"io"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/parallax-ipc/parallax"
	"github.com/parallax-ipc/parallax/internal/wire"
)

// queuedPair returns a client conn and a ServerConn with a writer started
// with opts. The server side's socket buffer is made as small as the kernel
// allows, so a client that does not read stalls the writer after a few
// messages. Every OnStall error is recorded in stalls.
func queuedPair(t *testing.T, opts QueueOptions) (client *Conn, sc *ServerConn, stalls func() []error) {
	t.Helper()
	cu, su := pair(t)
	require.NoError(t, su.SetWriteBuffer(1))
	sc, err := NewServerConn(su)
	require.NoError(t, err)
	var mu sync.Mutex
	var errs []error
	opts.OnStall = func(err error) { mu.Lock(); errs = append(errs, err); mu.Unlock() }
	sc.StartWriter(opts)
	t.Cleanup(func() { sc.Close() })
	return NewConn(cu), sc, func() []error { mu.Lock(); defer mu.Unlock(); return append([]error(nil), errs...) }
}

// openFDs counts this process's descriptors open on path.
func openFDs(t *testing.T, path string) int {
	t.Helper()
	ents, err := os.ReadDir("/proc/self/fd")
	require.NoError(t, err)
	n := 0
	for _, e := range ents {
		if p, err := os.Readlink(filepath.Join("/proc/self/fd", e.Name())); err == nil && p == path {
			n++
		}
	}
	return n
}

func waitDone(t *testing.T, sc *ServerConn) {
	t.Helper()
	select {
	case <-sc.Done():
	case <-time.After(10 * time.Second):
		t.Fatal("the writer did not exit")
	}
}

// drain reads c until it fails and returns the request ids read in order
// (closing the fds that came) and the final error.
func drain(c *Conn) ([]uint32, error) {
	var ids []uint32
	for {
		env, files, err := c.Recv()
		closeFiles(files)
		if err != nil {
			return ids, err
		}
		ids = append(ids, env.ReqID)
	}
}

func requireInOrder(t *testing.T, ids []uint32) {
	t.Helper()
	for i, id := range ids {
		require.Equal(t, uint32(i+1), id, "message %d out of order", i)
	}
}

var grantMsg = &wire.DataSegmentAdded{Seg: dataSeg}

// TestServerConnQueueOverflowCuts: a peer that does not read lets the
// queue overflow. The connection is cut (the peer reads what the kernel
// buffered, in order, then EOF), OnStall is told once, later sends fail, and
// no duplicate of a queued message's fd stays open.
func TestServerConnQueueOverflowCuts(t *testing.T) {
	t.Parallel()
	client, sc, stalls := queuedPair(t, QueueOptions{MaxMessages: 8, WriteTimeout: time.Minute})
	f := tempFiles(t, 1)[0]
	var sent uint32
	var err error
	for sent < 10_000 {
		if err = sc.Reply(sent+1, grantMsg, []*os.File{f}); err != nil {
			break
		}
		sent++
	}
	require.ErrorIs(t, err, ErrQueueFull)
	require.ErrorIs(t, err, parallax.ErrLimit)
	require.ErrorIs(t, sc.Reply(sent+2, grantMsg, []*os.File{f}), os.ErrClosed, "a cut connection takes nothing more")
	waitDone(t, sc)
	got := stalls()
	require.Len(t, got, 1)
	require.ErrorIs(t, got[0], ErrQueueFull)

	ids, err := drain(client)
	require.ErrorIs(t, err, io.EOF)
	require.Less(t, len(ids), int(sent), "the queued messages were dropped")
	requireInOrder(t, ids)
	require.Equal(t, 1, openFDs(t, f.Name()), "only the caller's own fd is left open")
}

// TestServerConnWriteStallCuts: a peer that does not read makes a write
// wait; after the write timeout the connection is cut and OnStall told.
func TestServerConnWriteStallCuts(t *testing.T) {
	t.Parallel()
	client, sc, stalls := queuedPair(t, QueueOptions{WriteTimeout: 50 * time.Millisecond})
	f := tempFiles(t, 1)[0]
	var sent uint32
	for ; sent < 200; sent++ { // far more than the shrunk socket buffer holds
		if sc.Reply(sent+1, grantMsg, []*os.File{f}) != nil {
			break
		}
	}
	waitDone(t, sc)
	got := stalls()
	require.Len(t, got, 1)
	require.ErrorIs(t, got[0], ErrWriteStalled)
	require.True(t, errors.Is(got[0], os.ErrDeadlineExceeded), "the cause is kept: %v", got[0])

	ids, err := drain(client)
	require.ErrorIs(t, err, io.EOF)
	require.Less(t, len(ids), int(sent))
	requireInOrder(t, ids)
	require.Equal(t, 1, openFDs(t, f.Name()))
}

// TestServerConnFlushThenClose: a reading peer gets every queued message,
// with its fd, in order, then EOF; nothing counts as a stall.
func TestServerConnFlushThenClose(t *testing.T) {
	t.Parallel()
	client, sc, stalls := queuedPair(t, QueueOptions{})
	f := tempFiles(t, 1)[0]
	const n = 300 // more than the socket buffer: the writer waits for the reader
	for i := range uint32(n) {
		require.NoError(t, sc.Reply(i+1, grantMsg, []*os.File{f}))
	}
	sc.CloseWhenFlushed()
	require.ErrorIs(t, sc.Push(&wire.Shutdown{Reason: "late"}, nil), os.ErrClosed)
	var ids []uint32
	for {
		env, files, err := client.Recv()
		if err != nil {
			require.ErrorIs(t, err, io.EOF)
			break
		}
		require.Len(t, files, 1, "message %d carries its fd", len(ids))
		requireSameFiles(t, []*os.File{f}, files)
		closeFiles(files)
		ids = append(ids, env.ReqID)
	}
	require.Len(t, ids, n)
	requireInOrder(t, ids)
	waitDone(t, sc)
	require.Empty(t, stalls())
	require.Equal(t, 1, openFDs(t, f.Name()))
}

// TestServerConnCloseDropsQueue: Close cuts at once, closes the fds of what
// was still queued and returns once the writer has exited.
func TestServerConnCloseDropsQueue(t *testing.T) {
	t.Parallel()
	client, sc, stalls := queuedPair(t, QueueOptions{WriteTimeout: time.Minute})
	f := tempFiles(t, 1)[0]
	for i := range uint32(100) { // the peer does not read: most stay queued
		require.NoError(t, sc.Reply(i+1, grantMsg, []*os.File{f}))
	}
	require.NoError(t, sc.Close())
	select {
	case <-sc.Done():
	default:
		t.Fatal("Close returned before the writer exited")
	}
	require.Equal(t, 1, openFDs(t, f.Name()))
	require.Empty(t, stalls(), "a Close is not a stall")
	ids, err := drain(client)
	require.Error(t, err)
	requireInOrder(t, ids)
}
