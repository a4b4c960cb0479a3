package roudi

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/parallax-ipc/parallax/dataseg"
	"github.com/parallax-ipc/parallax/internal/discovery"
	"github.com/parallax-ipc/parallax/internal/sys"
	"github.com/parallax-ipc/parallax/internal/testutil"
	"github.com/parallax-ipc/parallax/internal/wire"
	"github.com/parallax-ipc/parallax/ringbuf"
	"github.com/parallax-ipc/parallax/segment"
)

func init() { serverChildRoles["reopen-rw"] = reopenRWChild }

// startOwnedServer runs a router in the owned memory model on its own
// socket and domain.
func startOwnedServer(t *testing.T) *Server {
	t.Helper()
	return startOwnedServerWith(t, "")
}

// startOwnedServerWith is startOwnedServer with more [limits] keys.
func startOwnedServerWith(t *testing.T, limits string) *Server {
	t.Helper()
	dir := t.TempDir()
	cfg, err := ParseConfig([]byte(testPools + limits + `
[memory]
model = "owned"
[publishers]
hugepages = "never"
`))
	require.NoError(t, err)
	require.NoError(t, cfg.Validate())
	cfg.Domain = "owned" + filepath.Base(dir)
	cfg.Socket = filepath.Join(dir, "r.sock")
	cfg.RuntimeDir = dir
	srv, err := New(cfg, Options{Logger: discardLogger()})
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

// grantClient is a raw client that keeps the owned-segment grants pushed
// to it (with their fds).
type grantClient struct {
	c     *discovery.Client
	more  chan struct{} // signalled on each grant
	mu    sync.Mutex
	data  []*grantedFile[wire.DataSegDesc]
	conns []*grantedFile[wire.ConnSegDesc]
}

type grantedFile[D any] struct {
	desc D
	f    *os.File
}

func dialGrants(t *testing.T, ctx context.Context, srv *Server, name string) *grantClient {
	t.Helper()
	c, err := discovery.Dial(ctx, discovery.DialOptions{Socket: srv.SocketPath(), Name: name})
	require.NoError(t, err)
	g := &grantClient{c: c, more: make(chan struct{}, 1)}
	remove := c.OnPush(func(m wire.Message, files []*os.File) {
		g.mu.Lock()
		defer g.mu.Unlock()
		defer func() {
			select {
			case g.more <- struct{}{}:
			default:
			}
		}()
		switch m := m.(type) {
		case *wire.DataSegmentAdded:
			g.data = append(g.data, &grantedFile[wire.DataSegDesc]{m.Seg, files[0]})
			files[0] = nil // kept
		case *wire.ConnSegmentAdded:
			g.conns = append(g.conns, &grantedFile[wire.ConnSegDesc]{m.Seg, files[0]})
			files[0] = nil
		}
	})
	t.Cleanup(func() {
		remove()
		c.Close()
		g.mu.Lock()
		defer g.mu.Unlock()
		for _, d := range g.data {
			d.f.Close()
		}
		for _, d := range g.conns {
			d.f.Close()
		}
	})
	return g
}

// request sends m, closes the shared-model fds of the reply and waits
// until the pushes sent before it are handled.
func (g *grantClient) request(t *testing.T, ctx context.Context, m wire.Message) wire.Message {
	t.Helper()
	reply, files, err := g.c.Request(ctx, m, nil)
	require.NoError(t, err)
	for _, f := range files {
		f.Close()
	}
	require.NoError(t, g.c.Barrier(ctx))
	return reply
}

// await waits until g holds nData data and nConn connection grants.
func (g *grantClient) await(t *testing.T, ctx context.Context, nData, nConn int) {
	t.Helper()
	for {
		d, c := g.grants()
		if len(d) >= nData && len(c) >= nConn {
			return
		}
		select {
		case <-g.more:
		case <-ctx.Done():
			t.Fatalf("%d data and %d connection grants, want %d and %d", len(d), len(c), nData, nConn)
		}
	}
}

func (g *grantClient) grants() ([]*grantedFile[wire.DataSegDesc], []*grantedFile[wire.ConnSegDesc]) {
	g.mu.Lock()
	defer g.mu.Unlock()
	return append([]*grantedFile[wire.DataSegDesc](nil), g.data...), append([]*grantedFile[wire.ConnSegDesc](nil), g.conns...)
}

// TestOwnedSegmentsGranted: in the owned model a publisher's client gets
// its data segment read-write, a subscriber's client the connection and
// the data segment read-only, a publisher of another topic nothing of
// them. Every fd is a sealed 0600 memfd of the size the formula gives; the
// read-only fd maps only read-only.
func TestOwnedSegmentsGranted(t *testing.T) {
	t.Parallel()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	srv := startOwnedServer(t)
	pc := dialGrants(t, ctx, srv, "pub")
	sc := dialGrants(t, ctx, srv, "sub")
	oc := dialGrants(t, ctx, srv, "other")

	typ := wire.TypeInfo{Name: "T", Size: 64, Align: 8}
	pub := pc.request(t, ctx, &wire.CreatePublisher{Topic: "a", Type: typ}).(*wire.PublisherCreated)
	other := oc.request(t, ctx, &wire.CreatePublisher{Topic: "b", Type: typ}).(*wire.PublisherCreated)
	sub := sc.request(t, ctx, &wire.CreateSubscriber{Topic: "a", Type: typ}).(*wire.SubscriberCreated)
	// Connection grants follow the connection's creation, after the
	// subscriber's reply.
	pc.await(t, ctx, 1, 1)
	sc.await(t, ctx, 1, 1)

	// 64 B typed: MaxLoans 4 + bound(256 + 16) = 276 chunks (design §1.3).
	wantDesc := dataseg.Desc{PubID: pub.PubID, ChunkSize: 64, Count: 276, PageSize: uint32(os.Getpagesize())}
	pd, pconns := pc.grants()
	require.Len(t, pd, 1)
	require.Equal(t, wire.DataSegDesc{PubID: pub.PubID, Kind: wire.KindMemfd, ChunkSize: 64, Count: 276,
		PageSize: uint32(os.Getpagesize()), Size: uint64(dataseg.Size(wantDesc))}, pd[0].desc)
	checkOwnedFile(t, pd[0].f, int64(pd[0].desc.Size))
	// Its header (written with pwrite) attaches; the rest is zero.
	dmem, err := sys.Mmap(int(pd[0].f.Fd()), 0, int(pd[0].desc.Size), os.Getpagesize(), syscall.PROT_READ, syscall.MAP_SHARED)
	require.NoError(t, err)
	_, err = dataseg.Attach(dmem, wantDesc, true)
	require.NoError(t, err)
	require.Equal(t, make([]byte, len(dmem)-dataseg.HeaderSize), dmem[dataseg.HeaderSize:])
	require.NoError(t, sys.Munmap(dmem))
	require.Len(t, pconns, 1)

	sd, sconns := sc.grants()
	require.Len(t, sconns, 1)
	require.Equal(t, pconns[0].desc, sconns[0].desc)
	require.Equal(t, wire.ConnSegDesc{ConnID: sconns[0].desc.ConnID, PubID: pub.PubID, SubID: sub.SubID, Capacity: 256,
		ReturnCapacity: 512, Bound: 272, MaxHeld: 16, Policy: wire.PolicyDiscardOldest, Size: uint64(ringbuf.ConnSize(256, 512))}, sconns[0].desc)
	checkOwnedFile(t, sconns[0].f, int64(sconns[0].desc.Size))
	// Its content is exactly FormatConn's layout (written with pwrite,
	// zero pages skipped), and both ends attach it.
	cd := ringbuf.ConnDesc{ConnID: sconns[0].desc.ConnID, PubID: pub.PubID, SubID: sub.SubID, Policy: ringbuf.DiscardOldest,
		DataCap: 256, ReturnCap: 512, MaxHeld: 16, Bound: 272}
	want := make([]byte, sconns[0].desc.Size)
	_, err = ringbuf.FormatConn(want, cd)
	require.NoError(t, err)
	mem, err := sys.Mmap(int(sconns[0].f.Fd()), 0, len(want), os.Getpagesize(), syscall.PROT_READ, syscall.MAP_SHARED)
	require.NoError(t, err)
	require.Equal(t, want, mem, "connection segment content")
	_, err = ringbuf.AttachConn(mem, cd)
	require.NoError(t, err)
	require.NoError(t, sys.Munmap(mem))
	require.Len(t, sd, 1)
	require.True(t, sd[0].desc.ReadOnly)
	require.Equal(t, pub.PubID, sd[0].desc.PubID)
	checkOwnedFile(t, sd[0].f, int64(sd[0].desc.Size))

	// The same inode, read-only: no writable mapping, no write.
	var pst, sst syscall.Stat_t
	require.NoError(t, syscall.Fstat(int(pd[0].f.Fd()), &pst))
	require.NoError(t, syscall.Fstat(int(sd[0].f.Fd()), &sst))
	require.Equal(t, pst.Ino, sst.Ino)
	_, err = sys.Mmap(int(sd[0].f.Fd()), 0, int(sd[0].desc.Size), os.Getpagesize(), syscall.PROT_READ|syscall.PROT_WRITE, syscall.MAP_SHARED)
	require.ErrorIs(t, err, syscall.EACCES, "map the read-only fd writable")
	_, err = sd[0].f.WriteAt([]byte{1}, 0)
	require.Error(t, err, "write through the read-only fd")

	// The other topic's publisher has its own segment only.
	od, oconns := oc.grants()
	require.Len(t, od, 1)
	require.Equal(t, other.PubID, od[0].desc.PubID)
	require.False(t, od[0].desc.ReadOnly)
	require.Empty(t, oconns)

	// As another uid the read-only fd does not reopen read-write through
	// /proc/self/fd (0600, not the owner).
	testutil.RequiresRoot(t)
	exe := testutil.WorldExecutableCopy(t)
	cmd := exec.Command(exe, "-test.run=^$")
	cmd.Env = append(os.Environ(), "PARALLAX_TEST_CHILD=reopen-rw")
	cmd.ExtraFiles = []*os.File{sd[0].f}
	cmd.Dir = filepath.Dir(exe)
	cmd.SysProcAttr = &syscall.SysProcAttr{Credential: &syscall.Credential{Uid: 65534, Gid: 65534}}
	out, err := cmd.Output()
	require.NoError(t, err, "reopen-rw child")
	require.Equal(t, "denied\n", string(out))
}

// checkOwnedFile checks a granted fd: a memfd of mode 0600, sealed
// against shrinking, growing and further seals, of size bytes.
func checkOwnedFile(t *testing.T, f *os.File, size int64) {
	t.Helper()
	st, err := f.Stat()
	require.NoError(t, err)
	require.Equal(t, os.FileMode(0o600), st.Mode().Perm(), "mode of %s", f.Name())
	require.Equal(t, size, st.Size())
	seals, err := sys.GetSeals(int(f.Fd()))
	require.NoError(t, err)
	want := sys.F_SEAL_SHRINK | sys.F_SEAL_GROW | sys.F_SEAL_SEAL
	require.Equal(t, want, seals&want, "seals %#x", seals)
	link, err := os.Readlink(fmt.Sprintf("/proc/self/fd/%d", f.Fd()))
	require.NoError(t, err)
	require.Contains(t, link, "/memfd:parallax-plx:")
}

// reopenRWChild (uid 65534) tries to reopen fd 3 read-write through
// /proc/self/fd and prints "denied" when the kernel refuses with EACCES.
func reopenRWChild([]string) int {
	f, err := os.OpenFile("/proc/self/fd/3", os.O_RDWR, 0)
	switch {
	case err == nil:
		f.Close()
		fmt.Println("reopened read-write")
		return 1
	case errors.Is(err, syscall.EACCES):
		fmt.Println("denied")
		return 0
	default:
		fmt.Println("unexpected:", err)
		return 1
	}
}

// TestWriteNonZero checks the sparse format write: the file reads back as
// the buffer, all-zero pages are not written (not allocated), and a
// partial last page is written.
func TestWriteNonZero(t *testing.T) {
	t.Parallel()
	const page = 4096
	for _, tc := range []struct {
		name  string
		marks []int // offsets of non-zero bytes
		size  int
	}{
		{"empty", nil, 3 * page},
		{"first and last", []int{0, 3*page - 1}, 3 * page},
		{"run and gap", []int{10, page + 7, 3*page + 100}, 4 * page},
		{"partial last page", []int{2*page + 5}, 2*page + 64},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			f, err := segment.NewMemfdFile("writenonzero", tc.size)
			require.NoError(t, err)
			defer f.Close()
			buf := make([]byte, tc.size)
			for i, off := range tc.marks {
				buf[off] = byte(i + 1)
			}
			require.NoError(t, writeNonZero(f, buf, page))
			// Only the pages with marks were written (allocated).
			pages := map[int]bool{}
			for _, off := range tc.marks {
				pages[off/page] = true
			}
			var st syscall.Stat_t
			require.NoError(t, syscall.Fstat(int(f.Fd()), &st))
			require.Equal(t, int64(len(pages)*page), st.Blocks*512, "bytes allocated")
			got := make([]byte, tc.size)
			_, err = f.ReadAt(got, 0)
			require.NoError(t, err)
			require.Equal(t, buf, got)
		})
	}
}
