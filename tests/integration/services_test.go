//go:build integration

package integration

import (
	"context"
	"fmt"
	"net"
	"os"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/parallax-ipc/parallax/internal/discovery"
	"github.com/parallax-ipc/parallax/internal/wire"
	"github.com/parallax-ipc/parallax/publisher"
	"github.com/parallax-ipc/parallax/services"
)

// nextService waits for the watcher's next event about name (skipping
// others) and returns it.
func nextService(t *testing.T, w *services.Watcher, name string, within time.Duration) services.Event {
	t.Helper()
	deadline := time.After(within)
	for {
		select {
		case ev, ok := <-w.Events():
			require.True(t, ok, "watcher ended: %v", w.Err())
			if ev.Service.Name == name {
				return ev
			}
		case <-deadline:
			t.Fatalf("no event about %q within %v", name, within)
		}
	}
}

// TestServicesWatchAcrossProcesses: a watcher in this process sees a
// publisher process appear, a subscriber process appear, and the
// publisher's service disappear when its process is SIGKILLed, while
// another client stays attached.
func TestServicesWatchAcrossProcesses(t *testing.T) {
	t.Parallel()
	r := startRouter(t)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	w, err := services.Watch(ctx, services.Options{Socket: r.Socket})
	require.NoError(t, err)
	defer w.Close()

	other := spawn(t, "other", "sub", sockArg(r), "-topic=svc/other", "-gate")
	other.expect("ready")
	ev := nextService(t, w, "svc/other", time.Minute)
	require.Equal(t, services.Appeared, ev.Kind)

	pub := spawn(t, "pub", "pub", sockArg(r), "-topic=svc/a", "-n=0", "-hold")
	pub.expect("ready")
	ev = nextService(t, w, "svc/a", time.Minute)
	require.Equal(t, services.Appeared, ev.Kind)
	require.Len(t, ev.Service.Publishers, 1)
	require.Equal(t, int32(pub.cmd.Process.Pid), ev.Service.Publishers[0].PID)
	require.True(t, ev.Service.CanPublish)

	sub := spawn(t, "sub", "sub", sockArg(r), "-topic=svc/b", "-gate", "-qcap=32", "-policy=discard")
	sub.expect("ready")
	ev = nextService(t, w, "svc/b", time.Minute)
	require.Equal(t, services.Appeared, ev.Kind)
	require.Len(t, ev.Service.Subscribers, 1)
	require.Equal(t, int32(sub.cmd.Process.Pid), ev.Service.Subscribers[0].PID)
	require.Equal(t, 32, ev.Service.Subscribers[0].QueueCapacity)

	killed := time.Now()
	require.NoError(t, pub.cmd.Process.Signal(syscall.SIGKILL)) // our own child, by PID
	ev = nextService(t, w, "svc/a", 30*time.Second)
	require.Equal(t, services.Disappeared, ev.Kind)
	t.Logf("Disappeared %v after the SIGKILL", time.Since(killed))
	require.Error(t, pub.waitErr())

	// The other clients were not disturbed.
	got := map[string]bool{}
	for _, s := range w.Services() {
		got[s.Name] = true
	}
	require.Equal(t, map[string]bool{"svc/other": true, "svc/b": true}, got)
	for _, p := range []*proc{other, sub} {
		p.send("go")
		p.wait()
	}
	requireRouterAlive(t, r)
}

// dialRawWatcher connects by hand, starts a watch and never reads again.
func dialRawWatcher(t *testing.T, sock string) *discovery.Conn {
	t.Helper()
	uc, err := net.DialUnix("unixpacket", nil, &net.UnixAddr{Name: sock, Net: "unixpacket"})
	require.NoError(t, err)
	fc := discovery.NewConn(uc)
	t.Cleanup(func() { fc.Close() })
	require.NoError(t, fc.Send(1, &wire.Hello{Version: wire.Version, MinVersion: wire.MinVersion, PID: int32(os.Getpid()), Name: "silent-watcher"}, nil))
	env, files, err := fc.Recv()
	require.NoError(t, err)
	for _, f := range files {
		f.Close()
	}
	require.IsType(t, &wire.Welcome{}, env.Msg)
	require.NoError(t, fc.Send(2, &wire.WatchServices{}, nil))
	return fc
}

// hasProcess reports whether the router lists a client named name.
func hasProcess(ctx context.Context, t *testing.T, c *discovery.Client, name string) bool {
	t.Helper()
	m, _, err := c.Request(ctx, &wire.ListProcesses{}, nil)
	require.NoError(t, err)
	for _, p := range m.(*wire.ProcessList).Processes {
		if p.Name == name {
			return true
		}
	}
	return false
}

// TestServicesSilentWatcherIsCut: a watcher that never reads its socket is
// disconnected once its pushes back up, while a reading watcher keeps
// getting every change and the router keeps serving.
func TestServicesSilentWatcherIsCut(t *testing.T) {
	t.Parallel()
	r := startRouter(t)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	dialRawWatcher(t, r.Socket) // sends WatchServices, then never reads
	probe, err := discovery.Dial(ctx, discovery.DialOptions{Socket: r.Socket, Name: "probe"})
	require.NoError(t, err)
	defer probe.Close()
	require.True(t, hasProcess(ctx, t, probe, "silent-watcher"))

	w, err := services.Watch(ctx, services.Options{Socket: r.Socket})
	require.NoError(t, err)
	defer w.Close()

	// Churn: every publisher created and closed is two pushes to each
	// watcher. The silent one's socket buffer fills, then its queue or
	// its writer's timeout cuts it.
	var rounds int
	for ; hasProcess(ctx, t, probe, "silent-watcher"); rounds++ {
		require.NoError(t, ctx.Err(), "the silent watcher was not cut after %d rounds", rounds)
		topic := fmt.Sprintf("churn/%d", rounds%64)
		p, err := publisher.New(ctx, topic, publisher.Options{Socket: r.Socket})
		require.NoError(t, err)
		require.NoError(t, p.Close())
	}
	t.Logf("silent watcher cut after %d publishers came and went", rounds)

	// The reading watcher saw the churn and still sees changes now.
	p, err := publisher.New(ctx, "churn/after", publisher.Options{Socket: r.Socket})
	require.NoError(t, err)
	defer p.Close()
	ev := nextService(t, w, "churn/after", time.Minute)
	require.Equal(t, services.Appeared, ev.Kind)
	require.NoError(t, w.Err())
	requireRouterAlive(t, r)
}

// TestServicesWaitForPublisherProcess: WaitForPublisher returns when a
// publisher process appears, and honours its context.
func TestServicesWaitForPublisherProcess(t *testing.T) {
	t.Parallel()
	r := startRouter(t)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	opts := services.Options{Socket: r.Socket}

	type result struct {
		s   services.Service
		err error
	}
	got := make(chan result, 1)
	go func() {
		s, err := services.WaitForPublisher(ctx, opts, "svc/wait")
		got <- result{s, err}
	}()
	pub := spawn(t, "pub", "pub", sockArg(r), "-topic=svc/wait", "-n=0", "-hold")
	pub.expect("ready")
	select {
	case res := <-got:
		require.NoError(t, res.err)
		require.Len(t, res.s.Publishers, 1)
		require.Equal(t, int32(pub.cmd.Process.Pid), res.s.Publishers[0].PID)
	case <-time.After(time.Minute):
		t.Fatal("WaitForPublisher did not return after the publisher appeared")
	}
	pub.wait()

	cctx, ccancel := context.WithCancel(ctx)
	done := make(chan error, 1)
	go func() {
		_, err := services.WaitForPublisher(cctx, opts, "svc/never")
		done <- err
	}()
	ccancel()
	select {
	case err := <-done:
		require.ErrorIs(t, err, context.Canceled)
	case <-time.After(time.Minute):
		t.Fatal("WaitForPublisher ignored its context")
	}
}
