package discovery

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/parallax-ipc/parallax"
	"github.com/parallax-ipc/parallax/internal/wire"
)

// echoHandler answers Ping, CreatePublisher (ErrTopicNotFound for topic
// "missing"), GrowData (a DataSegmentAdded with seg's fd), CreateSubscriber
// (plus a ConnectionAdded and a ConnSegmentAdded push with seg's fd) and
// the rest with Ack.
func echoHandler(seg *os.File) func(s *ServerConn, env wire.Envelope, files []*os.File) {
	return func(s *ServerConn, env wire.Envelope, files []*os.File) {
		switch m := env.Msg.(type) {
		case *wire.Ping:
			_ = s.Reply(env.ReqID, &wire.Pong{}, nil)
		case *wire.CreatePublisher:
			if m.Topic == "missing" {
				_ = s.ReplyError(env.ReqID, fmt.Errorf("create publisher on %q: %w", m.Topic, parallax.ErrTopicNotFound))
				return
			}
			_ = s.Reply(env.ReqID, &wire.PublisherCreated{PubID: env.ReqID}, nil)
		case *wire.GrowData:
			_ = s.Reply(env.ReqID, &wire.DataSegmentAdded{Seg: dataSeg}, []*os.File{seg})
		case *wire.CreateSubscriber:
			_ = s.Reply(env.ReqID, &wire.SubscriberCreated{SubID: 7}, nil)
			_ = s.Push(&wire.ConnectionAdded{ConnID: 1, PubID: 1, SubID: 7, Capacity: 8}, nil)
			_ = s.Push(&wire.ConnSegmentAdded{Seg: connSeg}, []*os.File{seg})
		default:
			_ = s.Reply(env.ReqID, &wire.Ack{}, nil)
		}
	}
}

func TestDialHandshake(t *testing.T) {
	t.Parallel()
	r := startRouter(t, echoHandler(tempFiles(t, 1)[0]))
	c, err := Dial(testCtx(t), DialOptions{Socket: r.path, Name: "tester"})
	require.NoError(t, err)
	defer c.Close()
	w := c.Welcome()
	require.Equal(t, wire.Version, w.Version)
	require.Equal(t, "test", w.Domain)
	require.Equal(t, uint16(1), w.ClientID)
	require.Equal(t, resumeToken, w.ResumeToken)
	require.NoError(t, c.Err())
}

func TestDialNoRouter(t *testing.T) {
	t.Parallel()
	path := filepath.Join(t.TempDir(), "nobody.sock")
	_, err := Dial(testCtx(t), DialOptions{Socket: path, Domain: "lab"})
	require.ErrorIs(t, err, parallax.ErrDaemonUnavailable)
	require.Contains(t, err.Error(), "no router at "+path+" (start one with: parallax-roudi -domain lab)")
}

func TestHandshakeVersionMismatch(t *testing.T) {
	t.Parallel()
	cases := []struct {
		name                   string
		clientMin, clientMax   uint16
		routerMin, routerMax   uint16
		wantClient, wantRouter string
	}{
		{"client too old", 1, 1, 2, 3, "client speaks protocol version 1..1", "router speaks protocol versions 2..3"},
		{"client too new", 5, 6, 1, 1, "client speaks protocol version 5..6", "client \"tester\""},
		// A version 4 client (whose Resume lacks ResumePubMemory.MaxPayload)
		// against this build's router, and the reverse.
		{"v4 client, v5 router", 4, 4, wire.MinVersion, wire.Version, "client speaks protocol version 4..4", "router speaks protocol versions 5..5"},
		{"v5 client, v4 router", wire.MinVersion, wire.Version, 4, 4, "client speaks protocol version 5..5", "client \"tester\""},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			cu, su := pair(t)
			routerErr := make(chan error, 1)
			go func() {
				s, err := NewServerConn(su)
				if err != nil {
					routerErr <- err
					return
				}
				s.minVersion, s.maxVersion = c.routerMin, c.routerMax
				_, _, err = s.ReadHello(context.Background())
				routerErr <- err
			}()
			conn := NewConn(cu)
			_, err := handshake(testCtx(t), conn, "test.sock", DialOptions{Name: "tester", version: c.clientMax, minVersion: c.clientMin})
			require.ErrorIs(t, err, parallax.ErrProtocolVersion)
			require.Contains(t, err.Error(), c.wantClient)
			require.Contains(t, err.Error(), fmt.Sprintf("router speaks protocol versions %d..%d", c.routerMin, c.routerMax))

			rerr := <-routerErr
			require.ErrorIs(t, rerr, parallax.ErrProtocolVersion)
			require.Contains(t, rerr.Error(), c.wantRouter)
			require.Contains(t, rerr.Error(), fmt.Sprintf("speaks %d..%d", c.clientMin, c.clientMax))
		})
	}
}

func TestClientConcurrentRequests(t *testing.T) {
	t.Parallel()
	seg := tempFiles(t, 1)[0]
	r := startRouter(t, echoHandler(seg))
	c, err := Dial(testCtx(t), DialOptions{Socket: r.path})
	require.NoError(t, err)
	defer c.Close()

	workers, per := 8, 40
	if testing.Short() {
		per = 10
	}
	ctx := testCtx(t)
	var wg sync.WaitGroup
	errs := make(chan error, workers*per)
	for w := range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range per {
				switch (w + i) % 3 {
				case 0:
					m, _, err := c.Request(ctx, &wire.Ping{}, nil)
					if err == nil && m.MessageType() != wire.TypePong {
						err = fmt.Errorf("got %s", m.MessageType())
					}
					errs <- err
				case 1:
					m, files, err := c.Request(ctx, grow, nil)
					if err == nil {
						ds := m.(*wire.DataSegmentAdded)
						if len(files) != 1 || ds.Seg != dataSeg {
							err = fmt.Errorf("reply %+v with %d files", ds, len(files))
						}
						a, _ := seg.Stat()
						b, _ := files[0].Stat()
						if !os.SameFile(a, b) {
							err = errors.New("received fd is not the payload segment")
						}
						closeFiles(files)
					}
					errs <- err
				case 2:
					_, _, err := c.Request(ctx, &wire.CreatePublisher{Topic: "missing"}, nil)
					if !errors.Is(err, parallax.ErrTopicNotFound) {
						err = fmt.Errorf("want ErrTopicNotFound, got %v", err)
					} else {
						err = nil
					}
					errs <- err
				}
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		require.NoError(t, err)
	}
}

// TestClientStartPipelines starts several requests before waiting for any
// and waits for them out of order: each Wait gets its own request's reply.
// (The fake router handles requests concurrently, so it cannot check the
// order they arrived in; roudi reads and serves a client's requests in
// order.)
func TestClientStartPipelines(t *testing.T) {
	t.Parallel()
	r := startRouter(t, func(s *ServerConn, env wire.Envelope, files []*os.File) {
		m, ok := env.Msg.(*wire.CreatePublisher)
		if !ok {
			_ = s.Reply(env.ReqID, &wire.Ack{}, nil)
			return
		}
		var n uint32
		if _, err := fmt.Sscan(m.Topic, &n); err != nil {
			_ = s.ReplyError(env.ReqID, fmt.Errorf("topic %q: %w", m.Topic, parallax.ErrProtocol))
			return
		}
		_ = s.Reply(env.ReqID, &wire.PublisherCreated{PubID: 100 + n}, nil)
	})
	c, err := Dial(testCtx(t), DialOptions{Socket: r.path})
	require.NoError(t, err)
	defer c.Close()

	const n = 5
	calls := make([]*Call, n)
	for i := range calls {
		calls[i], err = c.Start(&wire.CreatePublisher{Topic: fmt.Sprint(i)}, nil)
		require.NoError(t, err)
	}
	for i := n - 1; i >= 0; i-- {
		m, files, err := calls[i].Wait(testCtx(t))
		require.NoError(t, err)
		require.Empty(t, files)
		require.Equal(t, uint32(100+i), m.(*wire.PublisherCreated).PubID)
	}
	_, err = c.Start(&wire.Hello{}, nil)
	require.ErrorIs(t, err, wire.ErrInvalidArgument)
}

func TestClientRemoteErrorKeepsSentinel(t *testing.T) {
	t.Parallel()
	r := startRouter(t, echoHandler(tempFiles(t, 1)[0]))
	c, err := Dial(testCtx(t), DialOptions{Socket: r.path})
	require.NoError(t, err)
	defer c.Close()
	_, _, err = c.Request(testCtx(t), &wire.CreatePublisher{Topic: "missing"}, nil)
	require.ErrorIs(t, err, parallax.ErrTopicNotFound)
	var re *wire.RemoteError
	require.ErrorAs(t, err, &re)
	require.Equal(t, wire.CodeTopicNotFound, re.Code)
	require.Contains(t, err.Error(), `create publisher on "missing"`)

	_, _, err = c.Request(testCtx(t), &wire.CreatePublisher{Topic: "bad topic"}, nil)
	require.ErrorIs(t, err, wire.ErrInvalidArgument)
	_, _, err = c.Request(testCtx(t), &wire.Shutdown{}, nil)
	require.ErrorIs(t, err, wire.ErrInvalidArgument)
}

func TestClientPushes(t *testing.T) {
	t.Parallel()
	seg := tempFiles(t, 1)[0]
	r := startRouter(t, echoHandler(seg))
	c, err := Dial(testCtx(t), DialOptions{Socket: r.path})
	require.NoError(t, err)
	defer c.Close()

	got := make(chan wire.Message, 4)
	var kept *os.File
	remove := c.OnPush(func(m wire.Message, files []*os.File) {
		if len(files) == 1 {
			kept, files[0] = files[0], nil // take ownership
		}
		got <- m
	})
	defer remove()
	_, _, err = c.Request(testCtx(t), &wire.CreateSubscriber{Topic: "t"}, nil)
	require.NoError(t, err)
	require.Equal(t, wire.TypeConnectionAdded, (<-got).MessageType())
	require.Equal(t, wire.TypeConnSegmentAdded, (<-got).MessageType())
	require.NotNil(t, kept)
	requireSameFiles(t, []*os.File{seg}, []*os.File{kept})
	require.NoError(t, kept.Close())
}

// blockingRouter never answers Ping until released; it reports each
// received Ping on seen.
func blockingRouter(t *testing.T) (r *fakeRouter, seen chan struct{}) {
	seen = make(chan struct{}, 16)
	release := make(chan struct{})
	r = startRouter(t, func(s *ServerConn, env wire.Envelope, files []*os.File) {
		seen <- struct{}{}
		<-release
	})
	t.Cleanup(func() { close(release) }) // runs before the router's stop
	return r, seen
}

func TestClientCloseFailsPending(t *testing.T) {
	t.Parallel()
	r, seen := blockingRouter(t)
	c, err := Dial(testCtx(t), DialOptions{Socket: r.path})
	require.NoError(t, err)
	res := make(chan error, 1)
	go func() {
		_, _, err := c.Request(context.Background(), &wire.Ping{}, nil)
		res <- err
	}()
	<-seen
	require.NoError(t, c.Close())
	err = <-res
	require.ErrorIs(t, err, os.ErrClosed)
	require.ErrorIs(t, c.Err(), os.ErrClosed)
	_, _, err = c.Request(testCtx(t), &wire.Ping{}, nil)
	require.ErrorIs(t, err, os.ErrClosed)
	require.NoError(t, c.Close()) // idempotent
}

func TestClientRouterGoesAway(t *testing.T) {
	t.Parallel()
	r, seen := blockingRouter(t)
	c, err := Dial(testCtx(t), DialOptions{Socket: r.path})
	require.NoError(t, err)
	defer c.Close()
	res := make(chan error, 1)
	go func() {
		_, _, err := c.Request(context.Background(), &wire.Ping{}, nil)
		res <- err
	}()
	<-seen
	r.dropClients()
	require.ErrorIs(t, <-res, parallax.ErrDaemonUnavailable)
	<-c.Done()
	require.ErrorIs(t, c.Err(), parallax.ErrDaemonUnavailable)
}

func TestClientRequestContextCancel(t *testing.T) {
	t.Parallel()
	r, seen := blockingRouter(t)
	c, err := Dial(testCtx(t), DialOptions{Socket: r.path})
	require.NoError(t, err)
	defer c.Close()
	ctx, cancel := context.WithCancel(context.Background())
	res := make(chan error, 1)
	go func() {
		_, _, err := c.Request(ctx, &wire.Ping{}, nil)
		res <- err
	}()
	<-seen
	cancel()
	require.ErrorIs(t, <-res, context.Canceled)
	require.NoError(t, c.Err())
}

// A send that finds the router gone (here: it shut its end for reading,
// so the send fails with EPIPE while the reader, which the router can
// still write to, sees no EOF) fails the client at once: Done closes and
// Err reports the router gone, so the process's runtime registry stops
// handing the connection out (clientrt.Acquire) and its reconnector runs.
// Before, only the reader's EOF failed the client.
func TestClientSendToGoneRouterFails(t *testing.T) {
	t.Parallel()
	r := startRouter(t, echoHandler(nil))
	c, err := Dial(testCtx(t), DialOptions{Socket: r.path})
	require.NoError(t, err)
	defer c.Close()
	_, _, err = c.Request(testCtx(t), &wire.Ping{}, nil)
	require.NoError(t, err)
	r.mu.Lock()
	require.Len(t, r.conns, 1)
	require.NoError(t, r.conns[0].uc.CloseRead())
	r.mu.Unlock()
	select {
	case <-c.Done():
		t.Fatal("the client failed before sending")
	default:
	}
	_, _, err = c.Request(testCtx(t), &wire.Ping{}, nil)
	require.ErrorIs(t, err, syscall.EPIPE)
	require.ErrorIs(t, err, parallax.ErrDaemonUnavailable)
	select {
	case <-c.Done():
	default:
		t.Fatal("a send that found the router gone left the client usable")
	}
	require.ErrorIs(t, c.Err(), parallax.ErrDaemonUnavailable)
	_, _, err = c.Request(testCtx(t), &wire.Ping{}, nil)
	require.ErrorIs(t, err, parallax.ErrDaemonUnavailable, "a later request fails without sending")
}

// A request whose WaitUndo gave up (its ctx ended) before the reply hands
// the reply, with its fds, to its undo function once it comes, on this
// client; a refused request (an error reply) has nothing to undo, and its
// undo is told so (a nil message). A reply that came before the caller
// looked goes either to the caller or to undo. A connection that ends
// before the reply tells undo there is nothing to undo.
func TestClientWaitUndo(t *testing.T) {
	t.Parallel()
	seg, err := os.CreateTemp(t.TempDir(), "seg")
	require.NoError(t, err)
	defer seg.Close()
	release := make(chan struct{})
	var releaseOnce sync.Once
	open := func() { releaseOnce.Do(func() { close(release) }) }
	echo := echoHandler(seg)
	r := startRouter(t, func(s *ServerConn, env wire.Envelope, files []*os.File) {
		if _, ok := env.Msg.(*wire.Ping); !ok {
			<-release
		}
		echo(s, env, files)
	})
	t.Cleanup(open) // before the router's stop, which waits for its handlers
	c, err := Dial(testCtx(t), DialOptions{Socket: r.path})
	require.NoError(t, err)
	defer c.Close()
	type undone struct {
		c     *Client
		m     wire.Message
		files int
	}
	got := make(chan undone, 4)
	undo := func(uc *Client, m wire.Message, files []*os.File) {
		closeFiles(files)
		got <- undone{uc, m, len(files)}
	}
	next := func() undone {
		t.Helper()
		select {
		case u := <-got:
			return u
		case <-time.After(10 * time.Second):
			t.Fatal("undo not called in 10 s")
			return undone{}
		}
	}
	gone, cancel := context.WithCancel(context.Background())
	cancel()
	var calls []*Call
	for _, m := range []wire.Message{&wire.CreatePublisher{Topic: "missing"}, &wire.CreatePublisher{Topic: "ok"}, &wire.GrowData{PubID: 1, ChunkSize: 64, Reason: wire.GrowOversized}} {
		call, err := c.Start(m, nil)
		require.NoError(t, err)
		_, _, err = call.WaitUndo(gone, undo)
		require.ErrorIs(t, err, context.Canceled)
		calls = append(calls, call)
	}
	require.Empty(t, got, "undone before the router answered")
	open()
	// The fake router serves requests concurrently: the three undos come
	// in either order, and the refused request has nothing to undo.
	var pub, grow, refused int
	for range 3 {
		u := next()
		require.Same(t, c, u.c)
		switch m := u.m.(type) {
		case nil:
			require.Zero(t, u.files)
			refused++
		case *wire.PublisherCreated:
			require.Equal(t, calls[1].id, m.PubID, "the refused request has nothing to undo")
			require.Zero(t, u.files)
			pub++
		case *wire.DataSegmentAdded:
			require.Equal(t, 1, u.files, "the undo owns the reply's fds")
			grow++
		default:
			t.Fatalf("undo got %T", u.m)
		}
	}
	require.Equal(t, 1, pub)
	require.Equal(t, 1, grow)
	require.Equal(t, 1, refused)

	// The reply is in before WaitUndo looks: either the caller or undo
	// gets it, never neither.
	call, err := c.Start(&wire.CreatePublisher{Topic: "ok"}, nil)
	require.NoError(t, err)
	require.Eventually(t, func() bool {
		c.mu.Lock()
		defer c.mu.Unlock()
		_, waiting := c.pending[call.id]
		return !waiting
	}, 10*time.Second, time.Millisecond)
	m, _, err := call.WaitUndo(gone, undo)
	if err == nil {
		require.Equal(t, &wire.PublisherCreated{PubID: call.id}, m)
	} else {
		require.ErrorIs(t, err, context.Canceled)
		require.Equal(t, &wire.PublisherCreated{PubID: call.id}, next().m)
	}
	require.Empty(t, got, "one reply undone twice")

	// The connection ends before the reply: undo is called, with nothing
	// to undo (the router frees what the connection made).
	block := make(chan struct{})
	defer close(block)
	r2 := startRouter(t, func(s *ServerConn, env wire.Envelope, files []*os.File) {
		if _, ok := env.Msg.(*wire.Ping); !ok {
			<-block
		}
		echo(s, env, files)
	})
	c2, err := Dial(testCtx(t), DialOptions{Socket: r2.path})
	require.NoError(t, err)
	call, err = c2.Start(&wire.CreatePublisher{Topic: "ok"}, nil)
	require.NoError(t, err)
	_, _, err = call.WaitUndo(gone, undo)
	require.True(t, GaveUp(err), "%v", err)
	require.NoError(t, c2.Close())
	u := next()
	require.Same(t, c2, u.c)
	require.Nil(t, u.m)
	_, _, err = call.Wait(testCtx(t))
	require.Error(t, err)
	// Each undo was called once: none comes late.
	select {
	case u := <-got:
		t.Fatalf("an undo called again, with %T", u.m)
	case <-time.After(50 * time.Millisecond):
	}
}
