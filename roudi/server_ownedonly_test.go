package roudi

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/parallax-ipc/parallax/internal/discovery"
	"github.com/parallax-ipc/parallax/internal/wire"
)

// TestOwnedNoSharedGrants: the router creates and grants nothing of the
// removed shared model (docs/design/memory-ownership.md §8.6, §8.11): the
// create replies and ConnectionAdded carry no fds (only the owned grants
// do), and the router process holds no management or pool memfd at all.
// Then the guard's report counters: a report by a client that is no end
// of the connection is refused (GuardStats.RefusedReports) and changes
// nothing; one by its subscriber cuts it (GuardStats.ReportCuts).
func TestOwnedNoSharedGrants(t *testing.T) {
	t.Parallel()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	srv := startOwnedServer(t)
	dom := srv.Config().Domain
	for _, name := range []string{dom + "-mgmt", dom + "-pool"} {
		require.Empty(t, memfdsNamed(t, "parallax-"+name), "the owned router created %s segments", name)
	}

	type push struct {
		msg   wire.Message
		files int
	}
	var mu sync.Mutex
	var pushes []push
	more := make(chan struct{}, 1)
	dial := func(name string) *discovery.Client {
		c, err := discovery.Dial(ctx, discovery.DialOptions{Socket: srv.SocketPath(), Name: name})
		require.NoError(t, err)
		t.Cleanup(func() { c.Close() })
		c.OnPush(func(m wire.Message, files []*os.File) {
			mu.Lock()
			pushes = append(pushes, push{m, len(files)})
			mu.Unlock()
			select {
			case more <- struct{}{}:
			default:
			}
		})
		return c
	}
	pc, sc := dial("pub"), dial("sub")
	typ := wire.TypeInfo{Name: "T", Size: 64, Align: 8}

	reply, files, err := pc.Request(ctx, &wire.CreatePublisher{Topic: "a", Type: typ}, nil)
	require.NoError(t, err)
	closeAll(files)
	require.IsType(t, &wire.PublisherCreated{}, reply)
	require.Empty(t, files, "PublisherCreated carried fds")

	reply, files, err = sc.Request(ctx, &wire.CreateSubscriber{Topic: "a", Type: typ}, nil)
	require.NoError(t, err)
	closeAll(files)
	sub := reply.(*wire.SubscriberCreated)
	require.Empty(t, files, "SubscriberCreated carried fds")

	// Both sides get ConnectionAdded and their connection segment; the
	// subscriber also the publisher's data segment (the publisher got its
	// own before its reply).
	counts := func() (added, owned int) {
		mu.Lock()
		defer mu.Unlock()
		for _, p := range pushes {
			switch p.msg.(type) {
			case *wire.ConnectionAdded:
				added++
			case *wire.ConnSegmentAdded, *wire.DataSegmentAdded:
				owned++
			}
		}
		return added, owned
	}
	for a, o := counts(); a < 2 || o < 4; a, o = counts() {
		select {
		case <-more:
		case <-ctx.Done():
			t.Fatalf("%d ConnectionAdded and %d owned grants pushed, want 2 and 4", a, o)
		}
	}
	mu.Lock()
	var added, owned int
	var conn uint32
	for _, p := range pushes {
		switch m := p.msg.(type) {
		case *wire.ConnectionAdded:
			added++
			conn = m.ConnID
			require.Zero(t, p.files, "ConnectionAdded carried fds")
		case *wire.ConnSegmentAdded, *wire.DataSegmentAdded:
			owned++
			require.Equal(t, 1, p.files, "%T without its fd", m)
		}
	}
	mu.Unlock()
	require.Equal(t, 2, added, "ConnectionAdded to both sides")
	require.GreaterOrEqual(t, owned, 3, "owned grants (publisher: data + connection; subscriber: connection + data)")
	for _, name := range []string{dom + "-mgmt", dom + "-pool"} {
		require.Empty(t, memfdsNamed(t, "parallax-"+name), "the owned router created %s segments", name)
	}

	// A stranger's report is refused: acknowledged, counted, nothing cut.
	stranger := dial("stranger")
	bad := &wire.ReportPeer{ConnID: conn, Ref: 1, Reason: wire.ReportBadRef, Detail: "test"}
	_, files, err = stranger.Request(ctx, bad, nil)
	require.NoError(t, err, "a report is acknowledged")
	closeAll(files)
	// The subscriber's report cuts the connection; the cut is pushed
	// after both counts (the Serve goroutine performs the core's actions
	// in order), so once it arrives the counters are final.
	bad.SubID = sub.SubID
	_, files, err = sc.Request(ctx, bad, nil)
	require.NoError(t, err)
	closeAll(files)
	removed := func() *wire.ConnectionRemoved {
		mu.Lock()
		defer mu.Unlock()
		for _, p := range pushes {
			if m, ok := p.msg.(*wire.ConnectionRemoved); ok && m.ConnID == conn {
				return m
			}
		}
		return nil
	}
	for removed() == nil {
		select {
		case <-more:
		case <-ctx.Done():
			t.Fatalf("connection %d not cut on its subscriber's report; guard stats %+v", conn, srv.GuardStats())
		}
	}
	require.Equal(t, wire.RemovedCorrupt, removed().Code)
	st := srv.GuardStats()
	require.Equal(t, uint64(1), st.RefusedReports, "the stranger's report: %+v", st)
	require.Equal(t, uint64(1), st.ReportCuts, "the subscriber's report: %+v", st)
}

// memfdsNamed returns the fds of this process (where the router runs)
// whose memfd name starts with prefix.
func memfdsNamed(t *testing.T, prefix string) []string {
	t.Helper()
	ents, err := os.ReadDir("/proc/self/fd")
	require.NoError(t, err)
	var out []string
	for _, e := range ents {
		link, err := os.Readlink(filepath.Join("/proc/self/fd", e.Name()))
		if err == nil && strings.HasPrefix(link, "/memfd:"+prefix) {
			out = append(out, link)
		}
	}
	return out
}
