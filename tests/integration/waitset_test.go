//go:build integration

package integration

import (
	"bufio"
	"context"
	"errors"
	"flag"
	"fmt"
	"os"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/parallax-ipc/parallax"
	"github.com/parallax-ipc/parallax/event"
	"github.com/parallax-ipc/parallax/internal/testutil"
	"github.com/parallax-ipc/parallax/publisher"
	"github.com/parallax-ipc/parallax/rpc"
	"github.com/parallax-ipc/parallax/subscriber"
	"github.com/parallax-ipc/parallax/waitset"
)

func init() { childRoles["wspeer"] = wsPeerMain }

// wsPeerMain holds the far ends of TestWaitSetCrossProcess: a publisher of
// topic ws/topic, a client of service ws/asked (served by the test), a
// server of ws/answered (called by the test), a notifier of event service
// ws/event and the pipe's write end (fd 3). It prints "ready" once every
// peer is connected, then fires one source per stdin line and prints
// "done <line>": "pub", "call" (the response is checked in the
// background; "called" follows it), "answer" (takes the test's request
// and responds), "notify <id>", "write".
func wsPeerMain(args []string) int {
	fs := flag.NewFlagSet("wspeer", flag.ContinueOnError)
	socket := fs.String("socket", "", "router socket")
	if err := fs.Parse(args); err != nil {
		return 2
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	pub, err := publisher.New(ctx, "ws/topic", publisher.Options{Socket: *socket})
	if err != nil {
		return childFail("wspeer", "publisher: %v", err)
	}
	defer pub.Close()
	ropts := rpc.Options{Socket: *socket}
	c, err := rpc.NewClient(ctx, "ws/asked", ropts)
	if err != nil {
		return childFail("wspeer", "client: %v", err)
	}
	defer c.Close()
	s, err := rpc.NewServer(ctx, "ws/answered", ropts)
	if err != nil {
		return childFail("wspeer", "server: %v", err)
	}
	defer s.Close()
	n, err := event.NewNotifier(ctx, "ws/event", event.Options{Socket: *socket})
	if err != nil {
		return childFail("wspeer", "notifier: %v", err)
	}
	defer n.Close()
	pipe := os.NewFile(3, "pipe")
	if err := errors.Join(pub.WaitForSubscribers(ctx, 1), c.WaitForServers(ctx, 1), n.WaitForListeners(ctx, 1)); err != nil {
		return childFail("wspeer", "peers: %v", err)
	}
	fmt.Println("ready")
	called := make(chan error, 1)
	in := bufio.NewScanner(os.Stdin)
	for in.Scan() {
		line := in.Text()
		f := strings.Fields(line)
		if len(f) == 0 {
			return childFail("wspeer", "empty line")
		}
		switch f[0] {
		case "pub":
			ch, err := pub.Loan(8)
			if err == nil {
				copy(ch.Bytes(), "wspeer!!")
				err = pub.Publish(ch)
			}
			if err != nil {
				return childFail("wspeer", "publish: %v", err)
			}
		case "call":
			go func() {
				r, err := c.Call(ctx, []byte("question"))
				if err == nil {
					if string(r.Bytes()) != "answer" {
						err = fmt.Errorf("response %q", r.Bytes())
					}
					_ = r.Release()
				}
				called <- err
			}()
		case "called":
			if err := <-called; err != nil {
				return childFail("wspeer", "call: %v", err)
			}
		case "answer":
			r, err := s.Receive(ctx)
			if err == nil {
				err = s.Respond(ctx, r, []byte("pong:"+string(r.Bytes())))
				_ = r.Release()
			}
			if err != nil {
				return childFail("wspeer", "answer: %v", err)
			}
		case "notify":
			id, err := strconv.ParseUint(f[len(f)-1], 10, 64)
			if err == nil {
				err = n.Signal(id)
			}
			if err != nil {
				return childFail("wspeer", "notify %q: %v", line, err)
			}
		case "write":
			if _, err := pipe.Write([]byte{'x'}); err != nil {
				return childFail("wspeer", "write: %v", err)
			}
		default:
			return childFail("wspeer", "unknown line %q", line)
		}
		fmt.Println("done " + line)
	}
	exitWatchdog("wspeer")
	return 0
}

// TestWaitSetCrossProcess: one wait set in this process waits on a
// subscriber, an rpc server, an rpc client, an event listener, a
// deadline, an interval and a pipe, whose other ends (publisher, rpc
// client, rpc server, notifier, pipe writer) live in another process.
// Each source is fired in turn; each is reported when, and only when, it
// fired: after it is consumed nothing but a due timer is reported, the
// deadline once at or after its time, the interval not before its ticks.
func TestWaitSetCrossProcess(t *testing.T) {
	t.Parallel()
	r := startRouterWith(t, ownedConfig)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	const (
		kSub = iota + 1
		kServer
		kClient
		kListener
		kDeadline
		kInterval
		kFd
	)
	sub, err := subscriber.New(ctx, "ws/topic", subscriber.Options{Socket: r.Socket})
	require.NoError(t, err)
	defer sub.Close()
	ropts := rpc.Options{Socket: r.Socket}
	srv, err := rpc.NewServer(ctx, "ws/asked", ropts)
	require.NoError(t, err)
	defer srv.Close()
	cl, err := rpc.NewClient(ctx, "ws/answered", ropts)
	require.NoError(t, err)
	defer cl.Close()
	l, err := event.NewListener(ctx, "ws/event", event.Options{Socket: r.Socket})
	require.NoError(t, err)
	defer l.Close()
	pr, pw, err := os.Pipe()
	require.NoError(t, err)
	defer pr.Close()
	peer := startProc(t, "wspeer", testutil.ChildCommand(t, "wspeer", []*os.File{pw}, sockArg(r)))
	require.NoError(t, pw.Close()) // the child has it
	peer.expect("ready")
	require.NoError(t, cl.WaitForServers(ctx, 1))
	require.NoError(t, l.WaitForNotifiers(ctx, 1))

	ws, err := waitset.New(waitset.Options{})
	require.NoError(t, err)
	defer ws.Close()
	require.NoError(t, ws.Add(sub, kSub))
	require.NoError(t, ws.Add(srv, kServer))
	require.NoError(t, ws.Add(cl, kClient))
	require.NoError(t, ws.Add(l, kListener))
	require.NoError(t, ws.AddFd(int(pr.Fd()), kFd))

	// Settle: a listener may be reported once with nothing to take while
	// its connections change (documented); nothing else may fire.
	for {
		wctx, wcancel := context.WithTimeout(ctx, 50*time.Millisecond)
		keys, err := ws.Wait(wctx)
		wcancel()
		if errors.Is(err, parallax.ErrTimeout) {
			break
		}
		require.NoError(t, err)
		require.Equal(t, []int{kListener}, keys, "fired before anything was sent")
		ids, err := l.TryWait()
		require.NoError(t, err)
		require.Empty(t, ids, "ids before any signal")
	}

	const period = 400 * time.Millisecond
	start := time.Now()
	deadline := start.Add(period / 2)
	require.NoError(t, ws.AddDeadline(deadline, kDeadline))
	require.NoError(t, ws.AddInterval(period, kInterval))
	nextTick := start.Add(period) // no tick is reported before this
	deadlineSeen := false
	// check accepts a reported timer key only when it is due; it returns
	// the source keys. before is the clock read before the Wait.
	check := func(keys []int, before time.Time) []int {
		t.Helper()
		now := time.Now()
		var srcs []int
		for _, k := range keys {
			switch k {
			case kDeadline:
				require.False(t, deadlineSeen, "the deadline fired twice")
				require.False(t, now.Before(deadline), "the deadline fired %v early", deadline.Sub(now))
				deadlineSeen = true
			case kInterval:
				require.False(t, now.Before(nextTick), "the interval fired %v early", nextTick.Sub(now))
				// The set moved it past its own clock, which was at
				// least before: the next report is not before the first
				// tick after before.
				nextTick = start.Add((before.Sub(start)/period + 1) * period)
			default:
				srcs = append(srcs, k)
			}
		}
		return srcs
	}
	// waitFor waits until key is reported; every other report is a due
	// timer.
	waitFor := func(key int) {
		t.Helper()
		wctx, wcancel := context.WithTimeout(ctx, 20*time.Second)
		defer wcancel()
		for {
			before := time.Now()
			keys, err := ws.Wait(wctx)
			require.NoError(t, err, "waiting for source %d", key)
			srcs := check(keys, before)
			if len(srcs) == 0 {
				continue
			}
			require.Equal(t, []int{key}, srcs, "only source %d fired", key)
			return
		}
	}
	// quiet checks that no source is reported for d (timers may be).
	quiet := func(d time.Duration) {
		t.Helper()
		end := time.Now().Add(d)
		for time.Now().Before(end) {
			wctx, wcancel := context.WithDeadline(ctx, end)
			before := time.Now()
			keys, err := ws.Wait(wctx)
			wcancel()
			if errors.Is(err, parallax.ErrTimeout) {
				return
			}
			require.NoError(t, err)
			require.Empty(t, check(keys, before), "a source fired that nothing fired")
		}
	}

	// The timers first: the deadline, then the interval's first tick.
	for !deadlineSeen || nextTick.Equal(start.Add(period)) {
		wctx, wcancel := context.WithTimeout(ctx, 10*time.Second)
		before := time.Now()
		keys, err := ws.Wait(wctx)
		wcancel()
		require.NoError(t, err)
		require.Empty(t, check(keys, before), "a source fired that nothing fired")
	}

	peer.send("pub")
	peer.expect("done pub")
	waitFor(kSub)
	x, err := sub.TryTake()
	require.NoError(t, err)
	require.Equal(t, "wspeer!!", string(x.Bytes()))
	require.NoError(t, x.Release())
	quiet(30 * time.Millisecond)

	peer.send("call")
	peer.expect("done call")
	waitFor(kServer)
	req, err := srv.Receive(ctx)
	require.NoError(t, err)
	require.Equal(t, "question", string(req.Bytes()))
	require.NoError(t, srv.Respond(ctx, req, []byte("answer")))
	require.NoError(t, req.Release())
	peer.send("called")
	peer.expect("done called")
	quiet(30 * time.Millisecond)

	ch, err := cl.Loan(4)
	require.NoError(t, err)
	copy(ch.Bytes(), "ping")
	st, err := cl.Start(ctx, &ch)
	require.NoError(t, err)
	quiet(30 * time.Millisecond) // a request sent is no response
	peer.send("answer")
	peer.expect("done answer")
	waitFor(kClient)
	resp, err := st.Next(ctx)
	require.NoError(t, err)
	require.Equal(t, "pong:ping", string(resp.Bytes()))
	require.True(t, resp.End())
	require.NoError(t, resp.Release())
	quiet(30 * time.Millisecond)

	peer.send("notify 7")
	peer.expect("done notify 7")
	waitFor(kListener)
	ids, err := l.TryWait()
	require.NoError(t, err)
	require.Equal(t, []uint64{7}, ids)
	quiet(30 * time.Millisecond)

	peer.send("write")
	peer.expect("done write")
	waitFor(kFd)
	var b [8]byte
	nr, err := pr.Read(b[:])
	require.NoError(t, err)
	require.Equal(t, "x", string(b[:nr]))
	quiet(30 * time.Millisecond)

	// Everything at once: each source reported (possibly over several
	// Waits), each consumed once.
	for _, line := range []string{"pub", "call", "notify 9", "write"} {
		peer.send(line)
		peer.expect("done " + line)
	}
	want := []int{kSub, kServer, kListener, kFd}
	var got []int
	wctx, wcancel := context.WithTimeout(ctx, 20*time.Second)
	defer wcancel()
	for len(got) < len(want) {
		before := time.Now()
		keys, err := ws.Wait(wctx)
		require.NoError(t, err, "reported so far %v of %v", got, want)
		for _, k := range check(keys, before) {
			require.Contains(t, want, k, "source %d fired although nothing fired it", k)
			if slices.Contains(got, k) {
				continue // level-triggered: consumed below
			}
			got = append(got, k)
			switch k {
			case kSub:
				x, err := sub.TryTake()
				require.NoError(t, err)
				require.NoError(t, x.Release())
			case kServer:
				req, err := srv.Receive(ctx)
				require.NoError(t, err)
				require.NoError(t, srv.Respond(ctx, req, []byte("answer")))
				require.NoError(t, req.Release())
			case kListener:
				ids, err := l.TryWait()
				require.NoError(t, err)
				require.Equal(t, []uint64{9}, ids)
			case kFd:
				_, err := pr.Read(b[:])
				require.NoError(t, err)
			}
		}
	}
	peer.send("called")
	peer.expect("done called")
	quiet(30 * time.Millisecond)
	peer.wait()
}
