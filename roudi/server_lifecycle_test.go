package roudi

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/parallax-ipc/parallax"
	"github.com/parallax-ipc/parallax/internal/discovery"
	"github.com/parallax-ipc/parallax/internal/testutil"
	"github.com/parallax-ipc/parallax/internal/wire"
	"github.com/parallax-ipc/parallax/roudi/procmon"
)

func init() { serverChildRoles["owned-sub"] = ownedSubChild }

// startOwnedServerOpts runs a router in the owned memory model with opts
// on its own socket and domain.
func startOwnedServerOpts(t *testing.T, opts Options) *Server {
	t.Helper()
	dir := t.TempDir()
	cfg, err := ParseConfig([]byte(testPools + `
[memory]
model = "owned"
[publishers]
hugepages = "never"
`))
	require.NoError(t, err)
	cfg.Domain = "life" + filepath.Base(dir)
	cfg.Socket = filepath.Join(dir, "r.sock")
	cfg.RuntimeDir = dir
	opts.Logger = discardLogger()
	srv, err := New(cfg, opts)
	require.NoError(t, err)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- srv.Serve(ctx) }()
	t.Cleanup(func() {
		cancel()
		require.NoError(t, <-done, "serve")
		require.NoError(t, srv.Close())
	})
	select {
	case <-srv.Ready():
	case <-time.After(10 * time.Second):
		t.Fatal("router not ready")
	}
	return srv
}

// lifeClient is a raw client that records the connection life cycle
// pushes it gets.
type lifeClient struct {
	c    *discovery.Client
	more chan struct{}
	mu   sync.Mutex
	log  []wire.Message // *ConnectionAdded, *ConnectionClosing, *ConnectionRemoved
}

func dialLife(t *testing.T, ctx context.Context, srv *Server, name string) *lifeClient {
	t.Helper()
	c, err := discovery.Dial(ctx, discovery.DialOptions{Socket: srv.SocketPath(), Name: name})
	require.NoError(t, err)
	l := &lifeClient{c: c, more: make(chan struct{}, 1)}
	remove := c.OnPush(func(m wire.Message, _ []*os.File) {
		switch m.(type) {
		case *wire.ConnectionAdded, *wire.ConnectionClosing, *wire.ConnectionRemoved:
		default:
			return // the client closes the fds of grants
		}
		l.mu.Lock()
		l.log = append(l.log, m)
		l.mu.Unlock()
		select {
		case l.more <- struct{}{}:
		default:
		}
	})
	t.Cleanup(func() {
		remove()
		c.Close()
	})
	return l
}

func (l *lifeClient) request(t *testing.T, ctx context.Context, m wire.Message) (wire.Message, error) {
	t.Helper()
	reply, files, err := l.c.Request(ctx, m, nil)
	for _, f := range files {
		f.Close()
	}
	return reply, err
}

// await waits until the log holds a message for which match holds and
// returns it.
func (l *lifeClient) await(t *testing.T, ctx context.Context, what string, match func(wire.Message) bool) wire.Message {
	t.Helper()
	for {
		l.mu.Lock()
		for _, m := range l.log {
			if match(m) {
				l.mu.Unlock()
				return m
			}
		}
		l.mu.Unlock()
		select {
		case <-l.more:
		case <-ctx.Done():
			t.Fatalf("timed out waiting for %s; pushes: %s", what, l.dump())
		}
	}
}

func (l *lifeClient) dump() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	var b strings.Builder
	for _, m := range l.log {
		fmt.Fprintf(&b, "%s%+v ", m.MessageType(), m)
	}
	return b.String()
}

// about returns the life cycle pushes naming connection id.
func (l *lifeClient) about(id uint32) []wire.Message {
	l.mu.Lock()
	defer l.mu.Unlock()
	var out []wire.Message
	for _, m := range l.log {
		switch m := m.(type) {
		case *wire.ConnectionClosing:
			if m.ConnID == id {
				out = append(out, m)
			}
		case *wire.ConnectionRemoved:
			if m.ConnID == id {
				out = append(out, m)
			}
		}
	}
	return out
}

// TestOwnedSubscriberKilled: a subscriber's process, a real child, is
// SIGKILLed. Its publisher's client is told ConnectionRemoved with code
// SubscriberGone (possibly after a ConnectionClosing when the socket's EOF
// arrives before the monitor's exit report), while another client, with a
// subscriber on the same topic and one on another, stays attached and is
// told nothing. Until the publisher releases the removed connection, the
// other client cannot release it (not an endpoint); the publisher's
// release and its repetition are acknowledged.
func TestOwnedSubscriberKilled(t *testing.T) {
	t.Parallel()
	for _, mode := range []procmon.Mode{procmon.ModeAuto, procmon.ModePidfd} {
		t.Run(string(mode), func(t *testing.T) {
			t.Parallel()
			ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
			defer cancel()
			srv := startOwnedServerOpts(t, Options{Monitor: mode})
			pc := dialLife(t, ctx, srv, "pub")
			idle := dialLife(t, ctx, srv, "idle")

			typ := wire.TypeInfo{Name: "T", Size: 64, Align: 8}
			rep, err := pc.request(t, ctx, &wire.CreatePublisher{Topic: "t", Type: typ})
			require.NoError(t, err)
			pub := rep.(*wire.PublisherCreated)
			_, err = idle.request(t, ctx, &wire.CreateSubscriber{Topic: "u", Type: typ})
			require.NoError(t, err)
			rep, err = idle.request(t, ctx, &wire.CreateSubscriber{Topic: "t", Type: typ})
			require.NoError(t, err)
			idleSub := rep.(*wire.SubscriberCreated).SubID
			idleConn := pc.await(t, ctx, "the idle client's connection", func(m wire.Message) bool {
				a, ok := m.(*wire.ConnectionAdded)
				return ok && a.SubID == idleSub
			}).(*wire.ConnectionAdded).ConnID

			cmd := testutil.ChildCommand(t, "owned-sub", nil, srv.SocketPath(), "t")
			stdin, err := cmd.StdinPipe()
			require.NoError(t, err)
			out, err := cmd.StdoutPipe()
			require.NoError(t, err)
			cmd.Stderr = os.Stderr
			require.NoError(t, cmd.Start())
			killed := false
			t.Cleanup(func() {
				if !killed {
					_ = cmd.Process.Kill()
				}
				stdin.Close()
				_ = cmd.Wait()
			})
			line, err := bufio.NewReader(out).ReadString('\n')
			require.NoError(t, err, "child's ready line")
			subID, err := strconv.ParseUint(strings.TrimSpace(strings.TrimPrefix(line, "ready ")), 10, 32)
			require.NoError(t, err, "ready line %q", line)
			conn := pc.await(t, ctx, "the child's connection", func(m wire.Message) bool {
				a, ok := m.(*wire.ConnectionAdded)
				return ok && a.SubID == uint32(subID) && a.PubID == pub.PubID
			}).(*wire.ConnectionAdded).ConnID

			require.NoError(t, cmd.Process.Kill()) // SIGKILL by pid
			killed = true
			_ = cmd.Wait()

			rm := pc.await(t, ctx, "ConnectionRemoved of the killed subscriber's connection", func(m wire.Message) bool {
				r, ok := m.(*wire.ConnectionRemoved)
				return ok && r.ConnID == conn
			}).(*wire.ConnectionRemoved)
			t.Logf("pushes about the killed connection: %d (first %s)", len(pc.about(conn)), pc.about(conn)[0].MessageType())
			require.Equal(t, wire.RemovedSubscriberGone, rm.Code, "removal %+v", rm)
			require.Equal(t, uint32(subID), rm.SubID)
			for i, m := range pc.about(conn) {
				if c, ok := m.(*wire.ConnectionClosing); ok {
					require.Zero(t, i, "a ConnectionClosing after the removal: %+v", c)
				}
			}

			// The idle client is attached and untouched.
			_, err = idle.request(t, ctx, &wire.Ping{})
			require.NoError(t, err)
			require.NoError(t, pc.c.Barrier(ctx))
			require.NoError(t, idle.c.Barrier(ctx))
			require.Empty(t, pc.about(idleConn), "pushes about the idle client's connection")
			idle.mu.Lock()
			for _, m := range idle.log {
				_, added := m.(*wire.ConnectionAdded)
				require.True(t, added, "idle client told %s%+v", m.MessageType(), m)
			}
			idle.mu.Unlock()

			// Only an endpoint releases the removed connection.
			_, err = idle.request(t, ctx, &wire.ReleaseConnection{ConnID: conn})
			require.ErrorIs(t, err, parallax.ErrPermissionDenied)
			_, err = idle.request(t, ctx, &wire.ReleaseConnection{ConnID: idleConn})
			require.ErrorIs(t, err, parallax.ErrProtocol, "release of a live connection")
			for range 2 {
				rep, err = pc.request(t, ctx, &wire.ReleaseConnection{ConnID: conn})
				require.NoError(t, err)
				require.IsType(t, &wire.Ack{}, rep)
			}
		})
	}
}

// ownedSubChild connects to the router at args[0], subscribes to topic
// args[1], prints "ready <subscriber id>" and waits for stdin to close (or
// to be killed).
func ownedSubChild(args []string) int {
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	c, err := discovery.Dial(ctx, discovery.DialOptions{Socket: args[0], Name: "owned-sub"})
	if err != nil {
		fmt.Fprintln(os.Stderr, "dial:", err)
		return 1
	}
	defer c.Close()
	rep, files, err := c.Request(ctx, &wire.CreateSubscriber{Topic: args[1], Type: wire.TypeInfo{Name: "T", Size: 64, Align: 8}}, nil)
	for _, f := range files {
		f.Close()
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "subscribe:", err)
		return 1
	}
	fmt.Printf("ready %d\n", rep.(*wire.SubscriberCreated).SubID)
	_, _ = io.Copy(io.Discard, os.Stdin)
	return 0
}
