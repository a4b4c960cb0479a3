package clientrt

import (
	"context"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/parallax-ipc/parallax/dataseg"
	"github.com/parallax-ipc/parallax/internal/discovery"
	"github.com/parallax-ipc/parallax/internal/wire"
)

// request is a control request a scriptedRouter received, or its
// connection's end (err set).
type request struct {
	s   *discovery.ServerConn
	env wire.Envelope
	err error
}

// scriptedRouter accepts one client, does the handshake, and hands each
// request to the test, which answers it (or not) itself.
func scriptedRouter(t *testing.T) (path string, reqs <-chan request) {
	t.Helper()
	path = filepath.Join(t.TempDir(), "r.sock")
	l, err := discovery.Listen(path)
	require.NoError(t, err)
	ch := make(chan request, 16)
	done := make(chan struct{})
	var conn *discovery.ServerConn
	go func() {
		defer close(done)
		uc, err := l.AcceptUnix()
		if err != nil {
			return
		}
		s, err := discovery.NewServerConn(uc)
		if err != nil {
			return
		}
		conn = s
		id, _, err := s.ReadHello(context.Background())
		if err == nil {
			err = s.Reply(id, &wire.Welcome{Version: s.Version, ClientID: 1, RouterPID: int32(os.Getpid()), Domain: "test"}, nil)
		}
		for err == nil {
			var env wire.Envelope
			var files []*os.File
			env, files, err = s.ReadRequest()
			for _, f := range files {
				f.Close()
			}
			if err == nil {
				ch <- request{s: s, env: env}
			}
		}
		ch <- request{err: err}
	}()
	t.Cleanup(func() {
		l.Close()
		<-done
		if conn != nil {
			conn.Close()
		}
	})
	return path, ch
}

// next returns the next request, or fails the test after 10 s.
func next(t *testing.T, reqs <-chan request) request {
	t.Helper()
	select {
	case r := <-reqs:
		return r
	case <-time.After(10 * time.Second):
		t.Fatal("no request from the client in 10 s")
		return request{}
	}
}

// A subscriber Create whose caller gave up is closed when its reply
// comes, and the connections the router pushed for it before the reply
// are released after the close, as Subscriber.Close releases its own:
// the router keeps a closed subscriber's connections closing until this
// process releases them. That holds when the give-up dropped the
// process's last reference to the runtime: the request keeps the runtime
// (and its control connection) until its undo ran, then lets it go.
// Without that, the runtime disconnected at the holder's Release below,
// before the reply: the router left the connections closing until the
// process died.
func TestGivenUpCreateKeepsRuntimeForItsUndo(t *testing.T) {
	t.Parallel()
	path, reqs := scriptedRouter(t)
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	holder, err := Acquire(ctx, Options{Socket: path})
	require.NoError(t, err)
	gone, stop := context.WithCancel(ctx)
	stop()
	_, _, _, err = AcquireCreate[*wire.SubscriberCreated](gone, Options{Socket: path}, &wire.CreateSubscriber{Topic: "t", QueueCapacity: 4})
	require.ErrorIs(t, err, context.Canceled)
	require.True(t, discovery.GaveUp(err), "%v", err)

	create := next(t, reqs)
	require.NoError(t, create.err)
	require.IsType(t, &wire.CreateSubscriber{}, create.env.Msg)
	// The holder goes before the router answers: the given-up request
	// holds the runtime now.
	holder.Release()
	s := create.s
	require.NoError(t, s.Push(&wire.ConnectionAdded{ConnID: 9, PubID: 3, SubID: 7, Capacity: 4}, nil))
	require.NoError(t, s.Reply(create.env.ReqID, &wire.SubscriberCreated{SubID: 7}, nil))

	r := next(t, reqs)
	require.NoError(t, r.err, "the runtime disconnected before the undo closed the subscriber")
	require.Equal(t, &wire.CloseSubscriber{SubID: 7}, r.env.Msg)
	require.NoError(t, s.Reply(r.env.ReqID, &wire.Ack{}, nil))
	r = next(t, reqs)
	require.NoError(t, r.err, "the subscriber's connection was not released")
	require.Equal(t, &wire.ReleaseConnection{ConnID: 9}, r.env.Msg)
	require.NoError(t, s.Reply(r.env.ReqID, &wire.Ack{}, nil))
	// Then the runtime, nobody's any more, disconnects.
	r = next(t, reqs)
	require.Error(t, r.err, "request %v after the undo", r.env.Msg)
}

// A publisher's first data segment comes before its Create reply. When the
// connection dies in between, the Create fails and the publisher never
// registers; a runtime that lives on (another endpoint of the process
// holds it, and it resumes with a restarted router) must not keep that
// segment mapped. Before, it stayed mapped for the runtime's life.
func TestCreateLostReplyUnmapsDataSegment(t *testing.T) {
	t.Parallel()
	path, reqs := scriptedRouter(t)
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	rt, err := Acquire(ctx, Options{Socket: path})
	require.NoError(t, err)
	defer rt.Release()
	done := make(chan error, 1)
	go func() {
		rt.BeginCreate()
		defer rt.EndCreate()
		_, _, err := Create[*wire.PublisherCreated](ctx, rt, &wire.CreatePublisher{Topic: "t"})
		done <- err
	}()
	create := next(t, reqs)
	require.NoError(t, create.err)
	require.IsType(t, &wire.CreatePublisher{}, create.env.Msg)
	f, wd := grantFile(t, dataseg.Desc{PubID: 5, ChunkSize: 256, Count: 16, PageSize: uint32(os.Getpagesize())})
	require.NoError(t, create.s.Push(&wire.DataSegmentAdded{Seg: wd}, []*os.File{f}))
	f.Close()
	// The segment is mapped while the Create is in flight (the
	// publisher would claim it after the reply)...
	require.Eventually(t, func() bool { own, _, _ := rt.OwnedMappings(); return own == 1 }, 10*time.Second, time.Millisecond,
		"the pushed data segment was not mapped")
	// ...and the router dies before its reply.
	create.s.Close()
	err = <-done
	require.True(t, ConnDead(err), "%v", err)
	require.Error(t, next(t, reqs).err)
	own, ro, conns := rt.OwnedMappings()
	require.Equal(t, []int{0, 0, 0}, []int{own, ro, conns}, "the failed publisher's data segment stays mapped")
}
