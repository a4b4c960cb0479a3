package roudi

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/parallax-ipc/parallax"
	"github.com/parallax-ipc/parallax/internal/discovery"
	"github.com/parallax-ipc/parallax/internal/wire"
)

// TestOwnedNoSharedGrants: in the owned model the router creates and
// grants nothing of the shared model (docs/design/memory-ownership.md
// §8.6): Welcome carries no management segment (fd or descriptor) and no
// pools, the create replies no payload segments and no notifier offset,
// ConnectionAdded no ring or notifier offsets; GrowPool and GetSegments
// are refused naming the model; and the router process holds no
// management or pool memfd at all.
func TestOwnedNoSharedGrants(t *testing.T) {
	t.Parallel()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	srv := startOwnedServer(t)
	require.Nil(t, srv.Pools(), "router-wide pools in the owned model")
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
		w := c.Welcome()
		require.Equal(t, wire.ModelOwned, w.Model)
		require.Nil(t, c.Mgmt(), "Welcome carried a management segment fd")
		require.Zero(t, w.Mgmt, "Welcome described a management segment")
		require.Empty(t, w.Pools, "Welcome described router-wide pools")
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
	pub := reply.(*wire.PublisherCreated)
	require.Empty(t, pub.Segments, "PublisherCreated granted payload segments")
	require.Empty(t, files, "PublisherCreated carried fds")

	reply, files, err = sc.Request(ctx, &wire.CreateSubscriber{Topic: "a", Type: typ}, nil)
	require.NoError(t, err)
	closeAll(files)
	sub := reply.(*wire.SubscriberCreated)
	require.Empty(t, sub.Segments, "SubscriberCreated granted payload segments")
	require.Empty(t, files, "SubscriberCreated carried fds")
	require.Zero(t, sub.NotifierOffset, "SubscriberCreated named a notifier in a management segment")

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
	for _, p := range pushes {
		switch m := p.msg.(type) {
		case *wire.ConnectionAdded:
			added++
			require.Zero(t, m.RingOffset, "ConnectionAdded named an arena ring")
			require.Zero(t, m.RingSize, "ConnectionAdded named an arena ring")
			require.Zero(t, m.NotifierOffset, "ConnectionAdded named an arena notifier")
			require.Zero(t, p.files, "ConnectionAdded carried fds")
		case *wire.ConnSegmentAdded, *wire.DataSegmentAdded:
			owned++
		case *wire.SegmentGrant, *wire.PoolRetired:
			t.Errorf("old-model push %T in the owned model", m)
		}
	}
	mu.Unlock()
	require.Equal(t, 2, added, "ConnectionAdded to both sides")
	require.GreaterOrEqual(t, owned, 3, "owned grants (publisher: data + connection; subscriber: connection + data)")

	for _, m := range []wire.Message{&wire.GrowPool{Size: 4096}, &wire.GetSegments{PoolID: 0, ReadOnly: true}, &wire.GetSegments{PoolID: 4}} {
		_, files, err := pc.Request(ctx, m, nil)
		closeAll(files)
		require.Error(t, err, "%T", m)
		require.True(t, errors.Is(err, parallax.ErrNotSupported), "%T: %v", m, err)
		require.Contains(t, err.Error(), "owned memory model", "%T", m)
		require.Empty(t, files, "%T", m)
	}
	for _, name := range []string{dom + "-mgmt", dom + "-pool"} {
		require.Empty(t, memfdsNamed(t, "parallax-"+name), "the owned router created %s segments", name)
	}
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
