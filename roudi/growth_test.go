package roudi

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/parallax-ipc/parallax"
	"github.com/parallax-ipc/parallax/internal/wire"
	"github.com/parallax-ipc/parallax/mempool"
	pubpkg "github.com/parallax-ipc/parallax/publisher"
	subpkg "github.com/parallax-ipc/parallax/subscriber"
)

// growthConfig: one tiny 256-byte class (4 chunks) that may grow twice, so
// 12 chunks at most; dedicated segments up to 512 KiB in all.
//
// Shared model: deleted in step 14. Every test of this file checks pool
// growth and dedicated segments of router-wide pools, which only the
// shared model has. Owned-model counterparts: roudi/internal/core scripts
// memory_grow{,_limits}.txt, roudi TestOwnedGrowData, subscriber
// owned_grow_test.go, tests/integration owned_grow_test.go.
const growthConfig = sharedModel + `
[[pools]]
chunk_size = "256B"
count = 4
hugepages = "never"
[[pools]]
chunk_size = "4KiB"
count = 4
hugepages = "never"
[growth]
enabled = true
max_segments_per_pool = 2
max_total_bytes = "1MiB"
max_dedicated_bytes = "512KiB"
[limits]
max_connections = 64
max_subscribers = 32
`

// otherSocket names the same socket through another path, so that this
// process opens a second runtime (a second client of the router), as
// another process would.
func otherSocket(srv *Server) string {
	return filepath.Join(filepath.Dir(srv.SocketPath()), ".", filepath.Base(srv.SocketPath()))
}

// onServe runs fn on the Serve goroutine and waits for it.
func onServe(t *testing.T, srv *Server, fn func()) {
	t.Helper()
	done := make(chan struct{})
	srv.events <- evFunc{fn: func() { fn(); close(done) }}
	select {
	case <-done:
	case <-time.After(10 * time.Second):
		t.Fatal("serve goroutine did not run fn")
	}
}

// requireAllFree waits until every pool but the retired dedicated ones is
// entirely free.
func requireAllFree(t *testing.T, srv *Server) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		var bad []string
		for _, p := range srv.Pools().Pools() {
			if a := p.Audit(); !a.AllFree() && !srv.RetiredPool(p.ID()) {
				bad = append(bad, fmt.Sprintf("pool %d: %v", p.ID(), a))
			}
		}
		if len(bad) == 0 {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("pools not all free:\n%s", strings.Join(bad, "\n"))
		}
		time.Sleep(5 * time.Millisecond) // polling a condition with a deadline
	}
}

func TestGrowthLayout(t *testing.T) {
	t.Parallel()
	cfg, err := ParseConfig([]byte(growthConfig))
	require.NoError(t, err)
	l, err := computeLayout(cfg)
	require.NoError(t, err)
	require.Len(t, l.Grown, 4)
	require.Len(t, l.Dedicated, dedicatedAreas)
	// Areas are disjoint and ordered: base pools, growth reserve, holds.
	end := l.Pools[len(l.Pools)-1].Offset + l.Pools[len(l.Pools)-1].Size
	for i, a := range l.Grown {
		require.Equal(t, uint16(2+i), a.ID)
		require.Equal(t, l.Pools[i/2].Class, a.Class)
		require.GreaterOrEqual(t, a.Offset, end)
		end = a.Offset + a.Size
	}
	for _, off := range l.Dedicated {
		require.GreaterOrEqual(t, off, end)
		require.Zero(t, off%mempool.RegionAlign)
		end = off + l.DedicatedSize
	}
	require.GreaterOrEqual(t, l.HoldsOff, end)

	cfg.Growth.Enabled = false
	l, err = computeLayout(cfg)
	require.NoError(t, err)
	require.Empty(t, l.Grown)
	require.Empty(t, l.Dedicated)
}

// TestGrowthUnderExhaustion: a subscriber that joined before any growth
// receives samples from grown pools (mapped lazily, read-only); the class
// stops growing at its limit with ErrPoolExhausted; a publisher of another
// runtime is granted the grown pools instead of growing further; every
// pool is free at the end.
func TestGrowthUnderExhaustion(t *testing.T) {
	t.Parallel()
	srv := startServerConfig(t, growthConfig, Options{})
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	sub, err := subpkg.New(ctx, "grow", subpkg.Options{Socket: otherSocket(srv)})
	require.NoError(t, err)
	defer sub.Close()
	pub, err := pubpkg.New(ctx, "grow", pubpkg.Options{Socket: srv.SocketPath()})
	require.NoError(t, err)
	defer pub.Close()
	require.NoError(t, pub.WaitForSubscribers(ctx, 1))

	var loans []pubpkg.Chunk
	for i := range 12 {
		c, err := pub.Loan(200)
		require.NoError(t, err, "loan %d", i)
		c.Bytes()[0] = byte(i)
		loans = append(loans, c)
	}
	_, err = pub.Loan(200)
	require.ErrorIs(t, err, parallax.ErrPoolExhausted, "beyond max_segments_per_pool")
	pools := map[uint32]bool{}
	for _, c := range loans {
		pools[c.Ref().Pool()] = true
		require.NoError(t, pub.Publish(c))
	}
	require.Len(t, pools, 3, "the class grew twice")
	for i := range 12 {
		s, err := sub.Take(ctx)
		require.NoError(t, err)
		require.Equal(t, byte(i), s.Bytes()[0])
		require.NoError(t, s.Release())
	}
	requireAllFree(t, srv)

	// Another runtime's publisher gets the grown pools, no new growth.
	pub2, err := pubpkg.New(ctx, "grow2", pubpkg.Options{Socket: otherSocket(srv)})
	require.NoError(t, err)
	defer pub2.Close()
	loans = loans[:0]
	for i := range 12 {
		c, err := pub2.Loan(100)
		require.NoError(t, err, "loan %d", i)
		loans = append(loans, c)
	}
	for _, c := range loans {
		require.NoError(t, pub2.Release(c))
	}
	var grown int
	onServe(t, srv, func() { grown = len(srv.growth.byID) })
	require.Equal(t, 2, grown)
	requireAllFree(t, srv)
}

// TestDedicatedSegment: a loan larger than every class gets a dedicated
// segment that a subscriber of another runtime maps on first sight; it is
// retired once released; the dedicated byte limit holds.
func TestDedicatedSegment(t *testing.T) {
	t.Parallel()
	srv := startServerConfig(t, growthConfig, Options{})
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	sub, err := subpkg.New(ctx, "big", subpkg.Options{Socket: otherSocket(srv)})
	require.NoError(t, err)
	defer sub.Close()
	pub, err := pubpkg.New(ctx, "big", pubpkg.Options{Socket: srv.SocketPath()})
	require.NoError(t, err)
	defer pub.Close()
	require.NoError(t, pub.WaitForSubscribers(ctx, 1))

	const n = 300 << 10
	c, err := pub.Loan(n)
	require.NoError(t, err)
	require.Len(t, c.Bytes(), n)
	for i := range c.Bytes() {
		c.Bytes()[i] = byte(i * 7)
	}
	_, err = pub.Loan(300 << 10)
	require.ErrorIs(t, err, parallax.ErrPoolExhausted, "a second one exceeds max_dedicated_bytes")
	id := uint16(c.Ref().Pool())
	seg := fmt.Sprintf("/memfd:parallax-%s-pool%d-dedicated ", srv.cfg.Domain, id)
	require.True(t, mapsContain(t, seg), "the dedicated segment is mapped")
	require.NoError(t, pub.Publish(c))

	s, err := sub.Take(ctx)
	require.NoError(t, err)
	require.Len(t, s.Bytes(), n)
	for i, b := range s.Bytes() {
		if b != byte(i*7) {
			t.Fatalf("byte %d = %d, want %d", i, b, byte(i*7))
		}
	}
	require.False(t, srv.RetiredPool(id), "held by the subscriber")
	require.NoError(t, s.Release())
	require.Eventually(t, func() bool { return srv.RetiredPool(id) }, 10*time.Second, 5*time.Millisecond)
	// The clients were told (wire.PoolRetired) and unmap it too: nothing in
	// this process (router, publisher's and subscriber's runtimes) maps
	// the segment any more, so its memory is back with the system.
	require.Eventually(t, func() bool { return !mapsContain(t, seg) }, 10*time.Second, 5*time.Millisecond, "%s still mapped", seg)
	var ded uint64
	onServe(t, srv, func() { ded = srv.core.Growth().DedicatedBytes })
	require.Zero(t, ded)

	// The retired pool is refused to late askers, and its budget is back.
	// (After a refusal the runtime waits growBackoff before it asks again.)
	require.Eventually(t, func() bool { c, err = pub.Loan(400 << 10); return err == nil }, 10*time.Second, 5*time.Millisecond)
	require.NotEqual(t, id, uint16(c.Ref().Pool()))
	require.NoError(t, pub.Release(c))
	_, err = pub.Loan(600 << 10)
	require.ErrorIs(t, err, parallax.ErrPoolExhausted)
	requireAllFree(t, srv)
}

func TestGrowthDisabled(t *testing.T) {
	t.Parallel()
	srv := startServerConfig(t, testPools+sharedModel, Options{})
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	pub, err := pubpkg.New(ctx, "nogrow", pubpkg.Options{Socket: srv.SocketPath()})
	require.NoError(t, err)
	defer pub.Close()
	var loans []pubpkg.Chunk
	for {
		c, err := pub.Loan(100)
		if err != nil {
			require.ErrorIs(t, err, parallax.ErrPoolExhausted)
			break
		}
		loans = append(loans, c)
	}
	require.Len(t, loans, 64)
	_, err = pub.Loan(1 << 20)
	require.ErrorIs(t, err, mempool.ErrTooLarge)
	for _, c := range loans {
		require.NoError(t, pub.Release(c))
	}
	requireAllFree(t, srv)
}

// TestGrowthRequestsChecked: GrowPool needs a publisher, GetSegments
// read-write too, and unknown pools are NotFound.
func TestGrowthRequestsChecked(t *testing.T) {
	t.Parallel()
	srv := startServerConfig(t, growthConfig, Options{})
	c := dialRaw(t, srv)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	_, files, err := c.Request(ctx, &wire.GrowPool{Size: 100}, nil)
	closeAll(files)
	require.ErrorIs(t, err, parallax.ErrPermissionDenied)
	_, files, err = c.Request(ctx, &wire.GetSegments{PoolID: 2}, nil)
	closeAll(files)
	require.ErrorIs(t, err, parallax.ErrPermissionDenied)
	_, files, err = c.Request(ctx, &wire.GetSegments{PoolID: 2, ReadOnly: true}, nil)
	closeAll(files)
	require.ErrorIs(t, err, wire.ErrNotFound)
}

// mapsContain reports whether /proc/self/maps has a line containing s.
func mapsContain(t *testing.T, s string) bool {
	t.Helper()
	b, err := os.ReadFile("/proc/self/maps")
	require.NoError(t, err)
	return strings.Contains(string(b), s)
}
