package roudi

import (
	"context"
	"os"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/parallax-ipc/parallax"
	"github.com/parallax-ipc/parallax/dataseg"
	"github.com/parallax-ipc/parallax/internal/discovery"
	"github.com/parallax-ipc/parallax/internal/sys"
	"github.com/parallax-ipc/parallax/internal/wire"
)

// streamClient is a raw client that counts the owned-segment pushes it
// gets (closing their fds) and remembers the retirements.
type streamClient struct {
	c       *discovery.Client
	more    chan struct{}
	mu      sync.Mutex
	added   []wire.DataSegDesc
	retired []wire.DataSegmentRetired
}

func dialStream(t *testing.T, ctx context.Context, srv *Server, name string) *streamClient {
	t.Helper()
	c, err := discovery.Dial(ctx, discovery.DialOptions{Socket: srv.SocketPath(), Name: name})
	require.NoError(t, err)
	s := &streamClient{c: c, more: make(chan struct{}, 1)}
	remove := c.OnPush(func(m wire.Message, _ []*os.File) { // the client closes the fds
		s.mu.Lock()
		defer s.mu.Unlock()
		switch m := m.(type) {
		case *wire.DataSegmentAdded:
			s.added = append(s.added, m.Seg)
		case *wire.DataSegmentRetired:
			s.retired = append(s.retired, *m)
		default:
			return
		}
		select {
		case s.more <- struct{}{}:
		default:
		}
	})
	t.Cleanup(func() { remove(); c.Close() })
	return s
}

// await waits until s got nAdded data segments and nRetired retirements.
func (s *streamClient) await(t *testing.T, ctx context.Context, nAdded, nRetired int) ([]wire.DataSegDesc, []wire.DataSegmentRetired) {
	t.Helper()
	for {
		s.mu.Lock()
		a, r := append([]wire.DataSegDesc(nil), s.added...), append([]wire.DataSegmentRetired(nil), s.retired...)
		s.mu.Unlock()
		if len(a) >= nAdded && len(r) >= nRetired {
			return a, r
		}
		select {
		case <-s.more:
		case <-ctx.Done():
			t.Fatalf("%d data segments and %d retirements, want %d and %d", len(a), len(r), nAdded, nRetired)
		}
	}
}

// growData asks for a dedicated segment for loans of size bytes and
// returns the reply with its fd.
func growData(ctx context.Context, c *discovery.Client, pub, size uint32) (wire.DataSegDesc, *os.File, error) {
	reply, files, err := c.Request(ctx, &wire.GrowData{PubID: pub, ChunkSize: size, Reason: wire.GrowOversized}, nil)
	if err != nil {
		return wire.DataSegDesc{}, nil, err
	}
	return reply.(*wire.DataSegmentAdded).Seg, files[0], nil
}

// countSegmentFDs counts this process's fds of segments of domain (memfds
// named plx:<domain>:…): unlike countFDs it ignores what parallel tests
// open meanwhile.
func countSegmentFDs(t *testing.T, domain string) int {
	t.Helper()
	ents, err := os.ReadDir("/proc/self/fd")
	require.NoError(t, err)
	n := 0
	for _, e := range ents {
		if l, err := os.Readlink("/proc/self/fd/" + e.Name()); err == nil && strings.Contains(l, "plx:"+domain+":") {
			n++
		}
	}
	return n
}

// TestOwnedGrowData drives GrowData, RetireData and GetDataSegment through
// the wire against an owned router: the dedicated segment for an 8 MiB
// loan arrives as the reply's fd (0600, sealed, sized per its descriptor),
// read-only to the connected subscriber first; retiring it tells the
// subscriber; thousands of grow/retire cycles reuse the index and leave
// the router's fds where they were; beyond max_publisher_bytes the error
// names the limit; GetDataSegment is the subscriber's alone.
func TestOwnedGrowData(t *testing.T) {
	t.Parallel()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	// One 64 MiB dedicated segment fits max_publisher_bytes, two do not;
	// the cycles below go faster than the default request rate. Messages
	// larger than the shared model's pools need its growth enabled (the
	// models coexist until step 14).
	srv := startOwnedServerWith(t, `max_publisher_bytes = "100MiB"
max_message_size = "16MiB"
max_requests_per_second = 1000000
request_burst = 100000
`)
	pc := dialGrants(t, ctx, srv, "pub")
	sc := dialStream(t, ctx, srv, "sub")
	oc := dialGrants(t, ctx, srv, "other")

	untyped := wire.TypeInfo{Name: "frame"}
	pub := pc.request(t, ctx, &wire.CreatePublisher{Topic: "frames", Type: untyped}).(*wire.PublisherCreated)
	_, files, err := sc.c.Request(ctx, &wire.CreateSubscriber{Topic: "frames", Type: untyped}, nil)
	require.NoError(t, err)
	closeFiles(files) // the shared model's segments
	pc.await(t, ctx, 1, 1)
	sc.await(t, ctx, 1, 0)
	_, conns := pc.grants()
	connID := conns[0].desc.ConnID

	// 8 MiB chunks: MaxLoans 4 + bound 4 (32 MiB connection budget) = 8.
	desc, f, err := growData(ctx, pc.c, pub.PubID, 8<<20)
	require.NoError(t, err)
	want := dataseg.Desc{PubID: pub.PubID, Index: 1, ChunkSize: 8 << 20, Count: 8, PageSize: uint32(os.Getpagesize())}
	require.Equal(t, wire.DataSegDesc{PubID: pub.PubID, Index: 1, Kind: wire.KindMemfd, ChunkSize: 8 << 20, Count: 8,
		PageSize: uint32(os.Getpagesize()), Size: uint64(dataseg.Size(want))}, desc)
	checkOwnedFile(t, f, int64(desc.Size))
	mem, err := sys.Mmap(int(f.Fd()), 0, int(desc.Size), os.Getpagesize(), syscall.PROT_READ|syscall.PROT_WRITE, syscall.MAP_SHARED)
	require.NoError(t, err, "map the publisher's fd read-write")
	_, err = dataseg.Attach(mem, want, false)
	require.NoError(t, err, "the segment is formatted as its descriptor says")
	require.NoError(t, sys.Munmap(mem))
	var pst syscall.Stat_t
	require.NoError(t, syscall.Fstat(int(f.Fd()), &pst))
	require.NoError(t, f.Close())
	added, _ := sc.await(t, ctx, 2, 0)
	ro := desc
	ro.ReadOnly = true
	require.Equal(t, ro, added[1], "the subscriber's read-only grant")

	// GetDataSegment: the subscriber gets a read-only fd of the same
	// inode; the other client and the publisher's client get nothing.
	reply, files, err := sc.c.Request(ctx, &wire.GetDataSegment{ConnID: connID, Index: 1}, nil)
	require.NoError(t, err)
	require.Equal(t, ro, reply.(*wire.DataSegmentAdded).Seg)
	var sst syscall.Stat_t
	require.NoError(t, syscall.Fstat(int(files[0].Fd()), &sst))
	require.Equal(t, pst.Ino, sst.Ino)
	_, err = sys.Mmap(int(files[0].Fd()), 0, int(desc.Size), os.Getpagesize(), syscall.PROT_READ|syscall.PROT_WRITE, syscall.MAP_SHARED)
	require.ErrorIs(t, err, syscall.EACCES, "map the read-only fd writable")
	closeFiles(files)
	for _, c := range []*discovery.Client{oc.c, pc.c} {
		_, _, err = c.Request(ctx, &wire.GetDataSegment{ConnID: connID, Index: 1}, nil)
		require.ErrorIs(t, err, parallax.ErrPermissionDenied)
		require.ErrorContains(t, err, "is not the subscriber side of connection")
	}
	// Nor may another client grow or retire the publisher.
	_, _, err = growData(ctx, oc.c, pub.PubID, 8<<20)
	require.ErrorIs(t, err, parallax.ErrPermissionDenied)
	_, _, err = oc.c.Request(ctx, &wire.RetireData{PubID: pub.PubID, Index: 1}, nil)
	require.ErrorIs(t, err, parallax.ErrPermissionDenied)

	// Beyond max_publisher_bytes: the error names the limit.
	_, _, err = growData(ctx, pc.c, pub.PubID, 8<<20)
	require.ErrorIs(t, err, parallax.ErrLimit)
	require.ErrorContains(t, err, "limits.max_publisher_bytes")

	retire := func(i int) {
		_, _, err := pc.c.Request(ctx, &wire.RetireData{PubID: pub.PubID, Index: 1}, nil)
		require.NoError(t, err, "cycle %d", i)
	}
	retire(0)
	_, retired := sc.await(t, ctx, 2, 1)
	require.Equal(t, wire.DataSegmentRetired{PubID: pub.PubID, Index: 1}, retired[0])

	// A stream of 8 MiB frames runs forever: each cycle reuses index 1,
	// and the fds of the process (router and clients) stay where they
	// were. More cycles than the shared model's dedicated areas (256) and
	// max_segments_per_publisher (4096).
	cycles := 10_000
	if testing.Short() {
		cycles = 4500
	}
	// Segment fds of this router's domain only: the test runs in parallel
	// with others, whose fds come and go (a process-wide count once read
	// 51 against 46 in CI).
	domain := srv.Config().Domain
	fds := countSegmentFDs(t, domain)
	for i := 1; i <= cycles; i++ {
		d, f, err := growData(ctx, pc.c, pub.PubID, 8<<20)
		require.NoError(t, err, "cycle %d", i)
		require.NoError(t, f.Close())
		require.Equal(t, uint16(1), d.Index, "cycle %d", i)
		retire(i)
	}
	sc.await(t, ctx, 2+cycles, 1+cycles)
	require.LessOrEqual(t, countSegmentFDs(t, domain), fds, "segment fds after %d grow/retire cycles", cycles)
}
