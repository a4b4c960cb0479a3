package clientrt

import (
	"os"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/parallax-ipc/parallax/dataseg"
	"github.com/parallax-ipc/parallax/internal/sys"
	"github.com/parallax-ipc/parallax/internal/wire"
	"github.com/parallax-ipc/parallax/ringbuf"
	"github.com/parallax-ipc/parallax/segment"
)

// ownedRuntime is a runtime with no router: enough for the grant handlers.
func ownedRuntime() *Runtime {
	return &Runtime{pubs: map[uint32]Endpoint{}, subs: map[uint32]Endpoint{}}
}

// grantFile returns a dup of a fresh memfd formatted as data segment d
// (the fd a router would send) and the descriptor the router would send
// with it.
func grantFile(t *testing.T, d dataseg.Desc) (*os.File, wire.DataSegDesc) {
	t.Helper()
	size := dataseg.Size(d)
	m, err := segment.NewMemfd("owned-test", size, segment.MemfdOptions{NoPrefault: true})
	require.NoError(t, err)
	defer m.Close()
	_, err = dataseg.Format(m.Bytes()[:size], d)
	require.NoError(t, err)
	f, err := sys.DupFile(m.File())
	require.NoError(t, err)
	return f, wire.DataSegDesc{PubID: d.PubID, Index: d.Index, Kind: wire.KindMemfd, ChunkSize: d.ChunkSize, Count: d.Count,
		PageSize: d.PageSize, Size: uint64(m.Len())}
}

// TestDataSegmentChecked: a granted data segment is mapped only if its fd
// matches the descriptor (size, seals, memfd kind, layout) and, for a
// publisher's first segment, while a Create is in flight (the router
// pushes it before its reply); a refused fd is closed and nothing is
// mapped.
func TestDataSegmentChecked(t *testing.T) {
	d := dataseg.Desc{PubID: 7, ChunkSize: 256, Count: 16, PageSize: uint32(os.Getpagesize())}
	cases := []struct {
		name     string
		bend     func(wd *wire.DataSegDesc, f **os.File)
		valid    bool
		noCreate bool
	}{
		{"matching", func(*wire.DataSegDesc, **os.File) {}, true, false},
		{"no Create in flight", func(*wire.DataSegDesc, **os.File) {}, false, true},
		{"size", func(wd *wire.DataSegDesc, _ **os.File) { wd.Size += uint64(os.Getpagesize()) }, false, false},
		{"chunk count", func(wd *wire.DataSegDesc, _ **os.File) { wd.Count++ }, false, false},
		{"hugetlb kind", func(wd *wire.DataSegDesc, _ **os.File) { wd.Kind = wire.KindHugetlb }, false, false},
		{"unsealed file", func(wd *wire.DataSegDesc, f **os.File) {
			(*f).Close()
			tmp, err := os.CreateTemp(t.TempDir(), "seg")
			require.NoError(t, err)
			require.NoError(t, tmp.Truncate(int64(wd.Size)))
			*f = tmp
		}, false, false},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			rt := ownedRuntime()
			if !c.noCreate {
				rt.BeginCreate()
			}
			f, wd := grantFile(t, d)
			c.bend(&wd, &f)
			if c.noCreate {
				_, err := rt.addDataSegment(wd, f, true)
				require.ErrorIs(t, err, errNoPublisher)
			} else {
				rt.onDataSegment(&wire.DataSegmentAdded{Seg: wd}, f)
			}
			own, ro, conns := rt.OwnedMappings()
			if c.valid {
				require.Equal(t, []int{1, 0, 0}, []int{own, ro, conns})
				seg := rt.OwnedPublisher(7).Segment(0)
				require.NotNil(t, seg)
				require.False(t, seg.ReadOnly())
			} else {
				require.Zero(t, own+ro+conns, "a segment that does not match its descriptor was mapped")
			}
			// Either way the runtime owns f: mapped (closed by the unmap
			// below) or closed already.
			rt.CloseOwnedPublisher(7)
			_, err := f.Stat()
			require.ErrorIs(t, err, os.ErrClosed, "the granted fd is left open")
		})
	}
}

// TestReadOnlyGrantWithoutConnection: a read-only data segment for a
// publisher no local subscriber is connected to is not mapped.
func TestReadOnlyGrantWithoutConnection(t *testing.T) {
	rt := ownedRuntime()
	f, wd := grantFile(t, dataseg.Desc{PubID: 3, ChunkSize: 64, Count: 4, PageSize: uint32(os.Getpagesize())})
	wd.ReadOnly = true
	rt.onDataSegment(&wire.DataSegmentAdded{Seg: wd}, f)
	own, ro, conns := rt.OwnedMappings()
	require.Zero(t, own+ro+conns)
	_, err := f.Stat()
	require.ErrorIs(t, err, os.ErrClosed)
}

// connGrantFile returns a fresh memfd formatted as connection segment cd
// (the fd a router would send) and the push that would come with it.
func connGrantFile(t *testing.T, cd ringbuf.ConnDesc) (*os.File, *wire.ConnSegmentAdded) {
	t.Helper()
	size := ringbuf.ConnSize(int(cd.DataCap), int(cd.ReturnCap))
	m, err := segment.NewMemfd("owned-conn-test", size, segment.MemfdOptions{NoPrefault: true})
	require.NoError(t, err)
	defer m.Close()
	_, err = ringbuf.FormatConn(m.Bytes(), cd)
	require.NoError(t, err)
	f, err := sys.DupFile(m.File())
	require.NoError(t, err)
	return f, &wire.ConnSegmentAdded{Seg: wire.ConnSegDesc{ConnID: cd.ConnID, PubID: cd.PubID, SubID: cd.SubID,
		Capacity: cd.DataCap, ReturnCapacity: cd.ReturnCap, Bound: cd.Bound, MaxHeld: cd.MaxHeld,
		Policy: wire.PolicyDiscardOldest, Size: uint64(m.Len())}}
}

// endCreateEndpoint is a subscriber endpoint that ends the Creates in
// flight when it gets its first connection segment, and keeps them all.
type endCreateEndpoint struct {
	rt    *Runtime
	ends  int
	conns []*OwnedConn
}

func (e *endCreateEndpoint) ConnectionAdded(*wire.ConnectionAdded)     {}
func (e *endCreateEndpoint) ConnectionRemoved(*wire.ConnectionRemoved) {}
func (e *endCreateEndpoint) DataSegmentAdded(*dataseg.Segment)         {}
func (e *endCreateEndpoint) ConnSegmentAdded(c *OwnedConn) {
	e.conns = append(e.conns, c)
	for ; e.ends > 0; e.ends-- {
		e.rt.EndCreate()
	}
}

// TestHeldGrantReleasedDuringReplay: connection segments held for a local
// subscriber that had not registered yet (their publisher lives in another
// process) are replayed when it registers; a Create ending during that
// replay releases the held grants. The replay still attaches each segment
// with a reference of its own: before, the release unmapped a segment the
// replay was about to attach (SIGSEGV in ringbuf.AttachConn; seen in
// BenchmarkGrid 10x100x10, a subscriber process creating 100 subscribers).
func TestHeldGrantReleasedDuringReplay(t *testing.T) {
	rt := ownedRuntime()
	rt.BeginCreate()
	rt.BeginCreate()
	for id := uint32(1); id <= 2; id++ {
		f, m := connGrantFile(t, ringbuf.ConnDesc{ConnID: id, PubID: 9, SubID: 5, Policy: ringbuf.DiscardOldest,
			DataCap: 8, ReturnCap: 8, MaxHeld: 4, Bound: 8})
		g := rt.onConnSegment(m, f)
		require.NotNil(t, g)
		rt.route(g) // sub 5 not registered, pub 9 remote: held
	}
	require.Len(t, rt.pending, 2)
	ep := &endCreateEndpoint{rt: rt, ends: 2}
	rt.RegisterSubscriber(5, ep)
	require.Len(t, ep.conns, 2, "both held connection segments reach the subscriber")
	for _, c := range ep.conns {
		require.Equal(t, uint32(5), c.Conn().Desc().SubID, "the attached segment is readable")
	}
	_, _, conns := rt.OwnedMappings()
	require.Equal(t, 2, conns)
	for _, c := range ep.conns {
		c.Close()
	}
	_, _, conns = rt.OwnedMappings()
	require.Zero(t, conns, "closing the subscriber's sides unmaps the segments")
}
