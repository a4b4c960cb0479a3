package rpc_test

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"os"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/parallax-ipc/parallax"
	"github.com/parallax-ipc/parallax/internal/routertest"
	"github.com/parallax-ipc/parallax/publisher"
	"github.com/parallax-ipc/parallax/rpc"
	"github.com/parallax-ipc/parallax/subscriber"
)

func testCtx(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	t.Cleanup(cancel)
	return ctx
}

// serve answers every request with handle until ctx ends; it returns a
// wait function.
func serve(t *testing.T, ctx context.Context, s *rpc.Server, handle func(rpc.Request) error) func() {
	t.Helper()
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		for {
			r, err := s.Receive(ctx)
			if err != nil {
				if ctx.Err() == nil && !errors.Is(err, os.ErrClosed) {
					t.Errorf("receive: %v", err)
				}
				return
			}
			if err := handle(r); err != nil && ctx.Err() == nil {
				t.Errorf("handle: %v", err)
			}
			_ = r.Release()
		}
	}()
	return wg.Wait
}

// echo answers with the request bytes followed by tag.
func echo(s *rpc.Server, tag byte) func(rpc.Request) error {
	return func(r rpc.Request) error {
		b := r.Bytes()
		ch, err := s.Loan(len(b) + 1)
		if err != nil {
			return err
		}
		copy(ch.Bytes(), b)
		ch.Bytes()[len(b)] = tag
		return s.Send(context.Background(), r, &ch, true)
	}
}

func newPair(t *testing.T, ctx context.Context, sock, svc string, opts rpc.Options) (*rpc.Server, *rpc.Client) {
	t.Helper()
	opts.Socket = sock
	s, err := rpc.NewServer(ctx, svc, opts)
	require.NoError(t, err)
	t.Cleanup(func() { _ = s.Close() })
	c, err := rpc.NewClient(ctx, svc, opts)
	require.NoError(t, err)
	t.Cleanup(func() { _ = c.Close() })
	require.NoError(t, c.WaitForServers(ctx, 1))
	return s, c
}

// Many clients, many goroutines each: every response is the one to its
// own request, from one of two servers (both get calls), and every chunk
// is back with its owner afterwards.
func TestCorrelationManyClients(t *testing.T) {
	t.Parallel()
	srv := routertest.Start(t, routertest.Owned)
	ctx := testCtx(t)
	sctx, stop := context.WithCancel(ctx)
	sock := srv.SocketPath()
	s1, err := rpc.NewServer(ctx, "plan", rpc.Options{Socket: sock})
	require.NoError(t, err)
	s2, err := rpc.NewServer(ctx, "plan", rpc.Options{Socket: sock})
	require.NoError(t, err)
	w1 := serve(t, sctx, s1, echo(s1, 1))
	w2 := serve(t, sctx, s2, echo(s2, 2))
	const clients, goroutines, calls = 3, 4, 40
	var cs []*rpc.Client
	for range clients {
		c, err := rpc.NewClient(ctx, "plan", rpc.Options{Socket: sock, MaxInFlight: goroutines})
		require.NoError(t, err)
		require.NoError(t, c.WaitForServers(ctx, 2))
		cs = append(cs, c)
	}
	var mu sync.Mutex
	tags := map[byte]int{}
	var wg sync.WaitGroup
	for ci, c := range cs {
		for g := range goroutines {
			wg.Add(1)
			go func() {
				defer wg.Done()
				req := make([]byte, 16)
				for i := range calls {
					binary.LittleEndian.PutUint64(req, uint64(ci))
					binary.LittleEndian.PutUint64(req[8:], uint64(g<<32|i))
					r, err := c.Call(ctx, req)
					if err != nil {
						t.Errorf("client %d goroutine %d call %d: %v", ci, g, i, err)
						return
					}
					got := r.Bytes()
					if !r.End() || len(got) != 17 || !bytes.Equal(got[:16], req) {
						t.Errorf("client %d goroutine %d call %d: response %x (end %v) to request %x", ci, g, i, got, r.End(), req)
					}
					mu.Lock()
					tags[got[16]]++
					mu.Unlock()
					require.NoError(t, r.Release())
				}
			}()
		}
	}
	wg.Wait()
	require.Equal(t, clients*goroutines*calls, tags[1]+tags[2])
	require.NotZero(t, tags[1], "server 1 got no call: %v", tags)
	require.NotZero(t, tags[2], "server 2 got no call: %v", tags)
	stop()
	w1()
	w2()
	for i, c := range cs {
		st := c.Stats()
		require.Zero(t, st.InUse, "client %d request memory: %+v", i, st)
		require.NoError(t, c.Close())
	}
	for i, s := range []*rpc.Server{s1, s2} {
		st := s.Stats()
		require.Zero(t, st.InUse, "server %d response memory: %+v", i+1, st)
		require.NoError(t, s.Close())
	}
}

// A request gets a stream of responses ended by the server.
func TestStream(t *testing.T) {
	t.Parallel()
	srv := routertest.Start(t, routertest.Owned)
	ctx := testCtx(t)
	s, c := newPair(t, ctx, srv.SocketPath(), "count", rpc.Options{})
	sctx, stop := context.WithCancel(ctx)
	defer stop()
	serve(t, sctx, s, func(r rpc.Request) error {
		n := int(r.Bytes()[0])
		for i := 1; i <= n; i++ {
			ch, err := s.Loan(1)
			if err != nil {
				return err
			}
			ch.Bytes()[0] = byte(i)
			if err := s.Send(ctx, r, &ch, i == n); err != nil {
				return err
			}
		}
		return nil
	})
	for _, n := range []int{1, 5, 40} {
		ch, err := c.Loan(1)
		require.NoError(t, err)
		ch.Bytes()[0] = byte(n)
		st, err := c.Start(ctx, &ch)
		require.NoError(t, err)
		for i := 1; i <= n; i++ {
			r, err := st.Next(ctx)
			require.NoError(t, err, "response %d of %d", i, n)
			require.Equal(t, []byte{byte(i)}, r.Bytes())
			require.Equal(t, i == n, r.End(), "response %d of %d", i, n)
			require.NoError(t, r.Release())
		}
		_, err = st.Next(ctx)
		require.ErrorIs(t, err, rpc.ErrEnded)
	}
}

// A call whose server does not answer ends at its deadline with
// parallax.ErrTimeout, and its slot is free again; a late response is
// dropped.
func TestDeadline(t *testing.T) {
	t.Parallel()
	srv := routertest.Start(t, routertest.Owned)
	ctx := testCtx(t)
	s, c := newPair(t, ctx, srv.SocketPath(), "slow", rpc.Options{MaxInFlight: 1})
	held := make(chan rpc.Request, 1)
	go func() {
		r, err := s.Receive(ctx)
		if err == nil {
			held <- r
		}
	}()
	dctx, cancel := context.WithTimeout(ctx, 50*time.Millisecond)
	_, err := c.Call(dctx, []byte("late"))
	cancel()
	require.ErrorIs(t, err, parallax.ErrTimeout)
	require.ErrorIs(t, err, context.DeadlineExceeded)
	r := <-held
	require.NoError(t, s.Respond(ctx, r, []byte("too late")))
	require.NoError(t, r.Release())
	// The slot is free: the next call (MaxInFlight 1) works and gets its
	// own response, not the late one.
	sctx, stop := context.WithCancel(ctx)
	defer stop()
	serve(t, sctx, s, echo(s, 9))
	resp, err := c.Call(ctx, []byte("now"))
	require.NoError(t, err)
	require.Equal(t, []byte("now\x09"), resp.Bytes())
	require.NoError(t, resp.Release())
}

// One call more than MaxInFlight fails at once with ErrInFlight
// (parallax.ErrLimit); ending a call makes room.
func TestInFlightLimit(t *testing.T) {
	t.Parallel()
	srv := routertest.Start(t, routertest.Owned)
	ctx := testCtx(t)
	_, c := newPair(t, ctx, srv.SocketPath(), "busy", rpc.Options{MaxInFlight: 2})
	var streams []rpc.Stream
	for range 2 {
		ch, err := c.Loan(8)
		require.NoError(t, err)
		st, err := c.Start(ctx, &ch)
		require.NoError(t, err)
		streams = append(streams, st)
	}
	ch, err := c.Loan(8)
	require.NoError(t, err)
	_, err = c.Start(ctx, &ch)
	require.ErrorIs(t, err, rpc.ErrInFlight)
	require.ErrorIs(t, err, parallax.ErrLimit)
	streams[0].Close()
	ch, err = c.Loan(8)
	require.NoError(t, err)
	st, err := c.Start(ctx, &ch)
	require.NoError(t, err)
	st.Close()
	streams[1].Close()
}

// A server that closes with calls pending fails them at once with
// ErrServerGone (not at their deadline).
func TestServerGoneFailsPending(t *testing.T) {
	t.Parallel()
	srv := routertest.Start(t, routertest.Owned)
	ctx := testCtx(t)
	s, c := newPair(t, ctx, srv.SocketPath(), "flaky", rpc.Options{})
	var got []rpc.Request
	for range 3 {
		ch, err := c.Loan(4)
		require.NoError(t, err)
		_, err = c.Start(ctx, &ch)
		require.NoError(t, err)
	}
	errs := make(chan error, 3)
	// Restart the three calls as streams we wait on.
	c2, err := rpc.NewClient(ctx, "flaky", rpc.Options{Socket: srv.SocketPath()})
	require.NoError(t, err)
	defer c2.Close()
	require.NoError(t, c2.WaitForServers(ctx, 1))
	for range 3 {
		go func() {
			_, err := c2.Call(ctx, []byte("x"))
			errs <- err
		}()
	}
	for len(got) < 6 {
		r, err := s.Receive(ctx)
		require.NoError(t, err)
		got = append(got, r)
	}
	for _, r := range got {
		require.NoError(t, r.Release())
	}
	require.NoError(t, s.Close())
	for range 3 {
		select {
		case err := <-errs:
			require.ErrorIs(t, err, rpc.ErrServerGone)
		case <-ctx.Done():
			t.Fatal("pending calls not failed")
		}
	}
	require.Zero(t, c2.Servers())
	_, err = c2.Call(ctx, []byte("y"))
	require.ErrorIs(t, err, rpc.ErrNoServer)
	require.Eventually(t, func() bool { return c2.Stats().InUse == 0 }, 10*time.Second, time.Millisecond,
		"request chunks delivered to the closed server come back: %+v", c2.Stats())
}

// Calling needs the publish side of the service's access rule, serving
// the subscribe side.
func TestAccessRefused(t *testing.T) {
	t.Parallel()
	srv := routertest.Start(t, routertest.Owned+`
[[access]]
topic = "guarded"
publish_uids = [4242]
subscribe_uids = [4242]
`)
	ctx := testCtx(t)
	sock := srv.SocketPath()
	_, err := rpc.NewServer(ctx, "guarded", rpc.Options{Socket: sock})
	require.ErrorIs(t, err, parallax.ErrPermissionDenied)
	require.ErrorContains(t, err, `may not serve "guarded"`)
	_, err = rpc.NewClient(ctx, "guarded", rpc.Options{Socket: sock})
	require.ErrorIs(t, err, parallax.ErrPermissionDenied)
	require.ErrorContains(t, err, `may not call "guarded"`)
}

type goal struct{ X, Y float64 }
type path struct{ N [8]int32 }
type other struct{ A, B, C int64 }

// Request and response types are checked at connect, and a typed client
// and server exchange values.
func TestTyped(t *testing.T) {
	t.Parallel()
	srv := routertest.Start(t, routertest.Owned)
	ctx := testCtx(t)
	sock := srv.SocketPath()
	s, err := rpc.NewTypedServer[goal, path](ctx, "route", rpc.Options{Socket: sock})
	require.NoError(t, err)
	defer s.Close()
	_, err = rpc.NewTypedClient[goal, other](ctx, "route", rpc.Options{Socket: sock})
	require.ErrorIs(t, err, parallax.ErrIncompatibleType)
	_, err = rpc.NewTypedClient[other, path](ctx, "route", rpc.Options{Socket: sock})
	require.ErrorIs(t, err, parallax.ErrIncompatibleType)
	c, err := rpc.NewTypedClient[goal, path](ctx, "route", rpc.Options{Socket: sock})
	require.NoError(t, err)
	defer c.Close()
	require.NoError(t, c.Client().WaitForServers(ctx, 1))
	sctx, stop := context.WithCancel(ctx)
	defer stop()
	go func() {
		for {
			r, err := s.Receive(sctx)
			if err != nil {
				return
			}
			g := r.Value()
			if err := s.Respond(ctx, r.Request, path{N: [8]int32{int32(g.X), int32(g.Y)}}); err != nil {
				t.Errorf("respond: %v", err)
			}
			_ = r.Release()
		}
	}()
	for i := range 10 {
		r, err := c.Call(ctx, goal{X: float64(i), Y: float64(2 * i)})
		require.NoError(t, err)
		require.Equal(t, [8]int32{int32(i), int32(2 * i)}, r.Value().N)
		require.NoError(t, r.Release())
	}
}

// A service and a topic of the same name do not meet: the topic's
// publisher and subscriber connect to each other only, the client to the
// server only.
func TestServiceApartFromTopic(t *testing.T) {
	t.Parallel()
	srv := routertest.Start(t, routertest.Owned)
	ctx := testCtx(t)
	sock := srv.SocketPath()
	_, c := newPair(t, ctx, sock, "both", rpc.Options{})
	sub, err := subscriber.New(ctx, "both", subscriber.Options{Socket: sock})
	require.NoError(t, err)
	defer sub.Close()
	pub, err := publisher.New(ctx, "both", publisher.Options{Socket: sock})
	require.NoError(t, err)
	defer pub.Close()
	require.Equal(t, 1, pub.Subscribers())
	require.Equal(t, 1, sub.Publishers())
	require.Equal(t, 1, c.Servers())
}

// A client that connects before any server finds the servers that come
// later, and calls reach each of them.
func TestServerJoinsLater(t *testing.T) {
	t.Parallel()
	srv := routertest.Start(t, routertest.Owned)
	ctx := testCtx(t)
	sock := srv.SocketPath()
	c, err := rpc.NewClient(ctx, "later", rpc.Options{Socket: sock})
	require.NoError(t, err)
	defer c.Close()
	_, err = c.Call(ctx, []byte("x"))
	require.ErrorIs(t, err, rpc.ErrNoServer)
	sctx, stop := context.WithCancel(ctx)
	defer stop()
	for i := range 2 {
		s, err := rpc.NewServer(ctx, "later", rpc.Options{Socket: sock})
		require.NoError(t, err)
		defer s.Close()
		serve(t, sctx, s, echo(s, byte('a'+i)))
		require.NoError(t, c.WaitForServers(ctx, i+1))
	}
	seen := map[byte]bool{}
	for range 4 {
		r, err := c.Call(ctx, []byte("q"))
		require.NoError(t, err)
		seen[r.Bytes()[1]] = true
		require.NoError(t, r.Release())
	}
	require.Equal(t, map[byte]bool{'a': true, 'b': true}, seen)
}
