package elements_test

import (
	"context"
	"errors"
	"fmt"
	"os"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/parallax-ipc/parallax/buffer"
	"github.com/parallax-ipc/parallax/internal/routertest"
	"github.com/parallax-ipc/parallax/pipeline"
	"github.com/parallax-ipc/parallax/pipeline/elements"
	"github.com/parallax-ipc/parallax/rpc"
)

// runServer answers every request of service svc with transform(request)
// until the test ends; it returns the server.
func runServer(t *testing.T, sock, svc string, transform func(dst, src []byte)) *rpc.Server {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	s, err := rpc.NewServer(ctx, svc, rpc.Options{Socket: sock})
	require.NoError(t, err)
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
			ch, err := s.Loan(len(r.Bytes()))
			if err == nil {
				transform(ch.Bytes(), r.Bytes())
				err = s.Send(ctx, r, &ch, true)
			}
			if err != nil && ctx.Err() == nil {
				t.Errorf("respond: %v", err)
			}
			_ = r.Release()
		}
	}()
	t.Cleanup(func() { cancel(); wg.Wait(); _ = s.Close() })
	return s
}

// invert writes the bitwise complement of src into dst.
func invert(dst, src []byte) {
	for i, x := range src {
		dst[i] = ^x
	}
}

// callCheck records each output buffer's metadata and checks its bytes
// are the complement of what metaSrc wrote, in order, read-only.
type callCheck struct {
	got  []buffer.Meta
	held []*buffer.Buffer // the last few, held to exercise the in-flight bound
}

func (c *callCheck) Consume(_ context.Context, b *buffer.Buffer) error {
	p := b.Bytes()
	i := int(^p[0]) | int(^p[1])<<8
	if i != len(c.got) || len(p) != 100 {
		b.Release()
		return fmt.Errorf("response %d (%d bytes) arrived at position %d", i, len(p), len(c.got))
	}
	for j, x := range p[2:] {
		if x != 0xff {
			b.Release()
			return fmt.Errorf("response %d byte %d is %#x, want 0xff", i, j+2, x)
		}
	}
	if b.Writable() || !elements.ReadOnly(b) {
		b.Release()
		return fmt.Errorf("response %d is writable: it must be a read-only view of the server's memory", i)
	}
	c.got = append(c.got, b.Meta)
	// Hold three responses at a time: with max-in-flight 4 the element
	// must wait for releases, never fail.
	c.held = append(c.held, b)
	if len(c.held) > 3 {
		c.held[0].Release()
		c.held = c.held[1:]
	}
	return nil
}

func (c *callCheck) Close() error {
	for _, b := range c.held {
		b.Release()
	}
	c.held = nil
	return nil
}

// ipccall sends each buffer to a server in the same process (through the
// router: owned segments both ways) and outputs the server's response as a
// read-only buffer carrying the input's metadata; every response chunk
// goes back to the server once the buffers are released.
func TestIPCCall(t *testing.T) {
	t.Parallel()
	const n = 300
	srv := routertest.Start(t, routertest.Owned)
	sock := srv.SocketPath()
	s := runServer(t, sock, "inv", invert)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()

	call := &elements.IPCCall{Service: "inv", Socket: sock, WaitServers: 1, MaxInFlight: 4, Timeout: 10 * time.Second}
	check := &callCheck{}
	var g pipeline.Graph
	require.NoError(t, g.Add("src", &metaSrc{n: n}))
	require.NoError(t, g.Add("call", call))
	require.NoError(t, g.Add("check", check))
	require.NoError(t, g.Chain("src", "call", "check"))
	require.NoError(t, pipeline.Run(ctx, &g, pipeline.Options{}))

	require.Equal(t, uint64(n), call.Calls())
	require.Len(t, check.got, n)
	for i, got := range check.got {
		require.Equal(t, metaOf(i), got, "buffer %d", i)
	}
	require.Eventually(t, func() bool { st := s.Stats(); return st.InUse == 0 && st.Loans == 0 }, 10*time.Second, time.Millisecond,
		"every response chunk is back at the server: %+v", s.Stats())
}

// A pipeline string: testsrc ! ipccall ! ... with an echo server gives the
// same bytes downstream as upstream.
func TestIPCCallLaunch(t *testing.T) {
	t.Parallel()
	srv := routertest.Start(t, routertest.Owned)
	sock := srv.SocketPath()
	s := runServer(t, sock, "x", func(dst, src []byte) { copy(dst, src) })
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()

	g, err := pipeline.Launch(fmt.Sprintf(`testsrc num-buffers=200 size=1KiB pattern=random ! checksum name=a ! ipccall service=x socket=%q timeout=10s ! checksum name=b ! fakesink`, sock), nil)
	require.NoError(t, err)
	require.NoError(t, pipeline.Run(ctx, g, pipeline.Options{}))
	sent := g.Element("a").(*elements.Checksum).Result()
	got := g.Element("b").(*elements.Checksum).Result()
	require.Equal(t, uint64(200), got.Buffers)
	require.Equal(t, sent, got)
	require.Eventually(t, func() bool { return s.Stats().InUse == 0 }, 10*time.Second, time.Millisecond,
		"every response chunk is back at the server: %+v", s.Stats())
}

// Without a server a call fails the pipeline with rpc.ErrNoServer; a
// missing service property is refused at parse time.
func TestIPCCallErrors(t *testing.T) {
	t.Parallel()
	_, err := pipeline.Launch(`testsrc ! ipccall ! fakesink`, nil)
	require.ErrorIs(t, err, pipeline.ErrBadValue)

	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	owned := routertest.Start(t, routertest.Owned)
	g, err := pipeline.Launch(fmt.Sprintf(`testsrc num-buffers=3 ! ipccall service=none wait-servers=0 socket=%q ! fakesink`, owned.SocketPath()), nil)
	require.NoError(t, err)
	require.ErrorIs(t, pipeline.Run(ctx, g, pipeline.Options{}), rpc.ErrNoServer)
}
