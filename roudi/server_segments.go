package roudi

import (
	"errors"
	"fmt"
	"os"

	"github.com/parallax-ipc/parallax/dataseg"
	"github.com/parallax-ipc/parallax/hugepages"
	"github.com/parallax-ipc/parallax/internal/wire"
	"github.com/parallax-ipc/parallax/ringbuf"
	"github.com/parallax-ipc/parallax/roudi/internal/core"
	"github.com/parallax-ipc/parallax/segment"
)

// Owned segments (design docs/design/memory-ownership.md §3.1): the
// memory work of the owned model. The core decides what exists and who
// gets which fd (roudi/internal/core/memory.go, conn_state.go); the server
// performs its actions:
//
//   - core.CreateDataSegment: a memfd (hugetlb when asked; a file in
//     memory.path with backing = "file", server_filebacking.go) named
//     "plx:<domain>:p<pub>.<index>", sized, sealed, fchmod 0600; the
//     dataseg header goes in with pwrite on a base-page memfd, through a
//     mapping made once and unmapped otherwise (hugetlbfs has no write(2));
//     the server keeps a read-write fd and a read-only twin (/proc/self/fd
//     reopened O_RDONLY, which works because the router owns the 0600
//     inode). Then it steps
//     core.DataSegmentCreated; on failure nothing is left.
//   - core.CreateConnSegment: a sealed memfd "plx:<domain>:c<conn>",
//     fchmod 0600, never mapped: ringbuf.FormatConn lays it out in the
//     router's own scratch buffer and the pages that are not all zero are
//     written with pwrite; one read-write fd.
//   - core.GrantSegments: wire.ConnSegmentAdded and wire.DataSegmentAdded
//     pushes, one fd each.
//   - core.CloseDataSegments, core.CloseConnSegment: close the fds (the
//     memory lives as long as a client maps it); a departed publisher's
//     segment 0 is read first (pread of its header's counters,
//     server_segcounters.go).
//
// The router never maps an owned segment again after formatting it (it
// preads a departed publisher's counters, server_segcounters.go).

// segFiles is the server's record of owned segments; owned by the Serve
// goroutine (and by Close).
type segFiles struct {
	data    map[dataKey]*dataSegFile
	conn    map[core.ConnectionID]*connSegFile
	reports []core.Event // outcomes to step after the current step's actions (segmentReports)
	fmtBuf  []byte       // scratch for formatting connection segments (scratch)
}

type dataKey struct {
	pub   core.PubID
	index uint16
}

type dataSegFile struct {
	desc   wire.DataSegDesc // ReadOnly false
	rw, ro *os.File
}

type connSegFile struct {
	desc wire.ConnSegDesc
	rw   *os.File
}

// ownedSegmentSizes gives the core the real layouts' sizes.
func ownedSegmentSizes() core.SegmentSizes {
	return core.SegmentSizes{
		Data: func(chunk, count uint32, huge bool) uint64 {
			return uint64(dataseg.Size(dataseg.Desc{PubID: 1, ChunkSize: chunk, Count: count, PageSize: uint32(dataPageSize(huge))}))
		},
		Conn: func(capacity, ret int) uint64 { return uint64(ringbuf.ConnSize(capacity, ret)) },
	}
}

func dataPageSize(huge bool) int {
	if huge {
		return 2 << 20
	}
	return os.Getpagesize()
}

// segmentAction performs one owned-segment action.
func (s *Server) segmentAction(a core.Action) {
	if s.segs.data == nil {
		s.segs = segFiles{data: map[dataKey]*dataSegFile{}, conn: map[core.ConnectionID]*connSegFile{}}
	}
	switch a := a.(type) {
	case core.CreateDataSegment:
		ev := core.DataSegmentCreated{Pub: a.Pub, Index: a.Index}
		f, err := s.createDataSeg(a)
		if err != nil {
			ev.Err = err
			s.log.Warn("create data segment", "pub", a.Pub, "index", a.Index, "err", err)
		} else {
			s.segs.data[dataKey{a.Pub, a.Index}] = f
		}
		s.segs.reports = append(s.segs.reports, ev)
	case core.CreateConnSegment:
		ev := core.ConnSegmentCreated{Connection: a.Connection}
		f, err := s.createConnSeg(a)
		if err != nil {
			ev.Err = err
			s.log.Warn("create connection segment", "conn", a.Connection, "err", err)
		} else {
			s.segs.conn[a.Connection] = f
		}
		s.segs.reports = append(s.segs.reports, ev)
	case core.GrantSegments:
		s.grantSegments(a)
	case core.CloseDataSegments:
		for _, i := range a.Indices {
			k := dataKey{a.Pub, i}
			if f := s.segs.data[k]; f != nil {
				if i == 0 && a.Topic != "" { // the publisher is gone: server_segcounters.go
					s.foldSegmentCounters(a.Pub, a.Topic, f.rw)
				}
				f.close()
				delete(s.segs.data, k)
			}
		}
	case core.CloseConnSegment:
		if f := s.segs.conn[a.Connection]; f != nil {
			_ = f.rw.Close()
			delete(s.segs.conn, a.Connection)
		}
	}
}

func (f *dataSegFile) close() error {
	err := f.rw.Close()
	if f.ro != nil {
		err = errors.Join(err, f.ro.Close())
	}
	return err
}

// newOwnedSeg creates a sealed memfd of size bytes (on 2 MiB pages when
// huge: required when require), fchmods it 0600, lets format lay it out,
// then unmaps it and returns a read-write fd and the page size used.
func newOwnedSeg(name string, size int, huge, require bool, format func(mem []byte, pageSize int) error) (_ *os.File, pageSize int, err error) {
	var m *segment.Mapped
	if huge {
		m, err = segment.NewHugepage(name, size, segment.HugepageOptions{Mode: hugepages.Huge2M, Require: require, NoPrefault: true})
	} else {
		m, err = segment.NewMemfd(name, size, segment.MemfdOptions{NoPrefault: true})
	}
	if err != nil {
		return nil, 0, err
	}
	defer func() { err = errors.Join(err, m.Close()) }()
	if err := m.File().Chmod(0o600); err != nil {
		return nil, 0, fmt.Errorf("fchmod %s 0600: %w", name, err)
	}
	if err := format(m.Bytes(), m.PageSize()); err != nil {
		return nil, 0, fmt.Errorf("format %s: %w", name, err)
	}
	// A second fd of the inode outlives the mapping (Close unmaps and
	// closes the first).
	f, err := os.OpenFile(fmt.Sprintf("/proc/self/fd/%d", m.File().Fd()), os.O_RDWR, 0)
	if err != nil {
		return nil, 0, fmt.Errorf("keep an fd of %s: %w", name, err)
	}
	return f, m.PageSize(), nil
}

func (s *Server) createDataSeg(a core.CreateDataSegment) (*dataSegFile, error) {
	name := fmt.Sprintf("plx:%s:p%d.%d", s.cfg.Domain, a.Pub, a.Index)
	var (
		d          dataseg.Desc
		size, page int
		rw         *os.File
		err        error
	)
	if !a.Hugepages && !s.fileBacked() {
		// A memfd on base pages: the header goes in with pwrite, no
		// mapping (hugetlbfs refuses write(2); file backing keeps its
		// mapping path).
		rw, err = s.newUnmappedDataSeg(name, a)
		page, size = os.Getpagesize(), int(a.Bytes)
		d = dataseg.Desc{PubID: uint32(a.Pub), Index: a.Index, ChunkSize: a.ChunkSize, Count: a.Count, PageSize: uint32(page)}
	} else {
		rw, page, err = s.newDataSeg(name, int(a.Bytes), a.Hugepages, a.Require, func(mem []byte, page int) error {
			// After a fallback to normal pages (hugepages "auto") the
			// segment keeps the size asked, larger than the layout needs.
			size = len(mem)
			d = dataseg.Desc{PubID: uint32(a.Pub), Index: a.Index, ChunkSize: a.ChunkSize, Count: a.Count, PageSize: uint32(page)}
			if page > os.Getpagesize() {
				d.Flags = dataseg.FlagHugetlb
			}
			if n := dataseg.Size(d); n == 0 || n > len(mem) {
				return fmt.Errorf("%d chunks of %d bytes need %d bytes, the segment has %d", a.Count, a.ChunkSize, n, len(mem))
			}
			_, err := dataseg.Format(mem[:dataseg.Size(d)], d)
			return err
		})
	}
	if err != nil {
		return nil, err
	}
	f := &dataSegFile{rw: rw, desc: wire.DataSegDesc{PubID: uint32(a.Pub), Index: a.Index, Kind: s.dataSegKind(page),
		ChunkSize: a.ChunkSize, Count: a.Count, PageSize: d.PageSize, Size: uint64(size)}}
	if f.ro, err = os.OpenFile(fmt.Sprintf("/proc/self/fd/%d", rw.Fd()), os.O_RDONLY, 0); err != nil {
		_ = rw.Close()
		return nil, fmt.Errorf("reopen %s read-only: %w", name, err)
	}
	return f, nil
}

// newUnmappedDataSeg creates the base-page memfd of data segment a,
// sealed and 0600, and writes its header with pwrite; it returns the
// read-write fd.
func (s *Server) newUnmappedDataSeg(name string, a core.CreateDataSegment) (_ *os.File, err error) {
	d := dataseg.Desc{PubID: uint32(a.Pub), Index: a.Index, ChunkSize: a.ChunkSize, Count: a.Count, PageSize: uint32(os.Getpagesize())}
	h := s.segs.scratch(dataseg.HeaderSize)
	n, err := dataseg.FormatHeader(h, d)
	if err != nil {
		return nil, fmt.Errorf("format %s: %w", name, err)
	}
	if n > int(a.Bytes) {
		return nil, fmt.Errorf("format %s: %d chunks of %d bytes need %d bytes, the segment has %d", name, a.Count, a.ChunkSize, n, a.Bytes)
	}
	rw, err := newPrivateMemfd(name, int(a.Bytes))
	if err != nil {
		return nil, err
	}
	if _, err := rw.WriteAt(h, 0); err != nil {
		_ = rw.Close()
		return nil, fmt.Errorf("format %s: %w", name, err)
	}
	return rw, nil
}

// newPrivateMemfd creates a sealed memfd of size bytes (segment.NewMemfdFile,
// not mapped) with mode 0600, before any fd of it leaves the router.
func newPrivateMemfd(name string, size int) (*os.File, error) {
	rw, err := segment.NewMemfdFile(name, size)
	if err != nil {
		return nil, err
	}
	if err := rw.Chmod(0o600); err != nil {
		_ = rw.Close()
		return nil, fmt.Errorf("fchmod %s 0600: %w", name, err)
	}
	return rw, nil
}

func (s *Server) createConnSeg(a core.CreateConnSegment) (_ *connSegFile, err error) {
	name := fmt.Sprintf("plx:%s:c%d", s.cfg.Domain, a.Connection)
	pol := ringbuf.DiscardOldest
	wpol := wire.PolicyDiscardOldest
	if a.Policy == core.BlockProducer {
		pol, wpol = ringbuf.BlockProducer, wire.PolicyBlockProducer
	}
	cd := ringbuf.ConnDesc{ConnID: uint32(a.Connection), PubID: uint32(a.Pub), SubID: uint32(a.Sub), Policy: pol,
		DataCap: uint32(a.Capacity), ReturnCap: uint32(a.ReturnCapacity), MaxHeld: uint32(a.MaxHeld), Bound: uint32(a.Bound)}
	// Formatted in the router's own memory and written with pwrite: no
	// mapping to create and tear down (munmap's TLB shootdown), and the fd
	// memfd_create returned is the one kept (no /proc/self/fd reopen).
	rw, err := newPrivateMemfd(name, int(a.Bytes))
	if err != nil {
		return nil, err
	}
	defer func() {
		if err != nil {
			_ = rw.Close()
		}
	}()
	buf := s.segs.scratch(int(a.Bytes))
	if _, err := ringbuf.FormatConn(buf, cd); err != nil {
		return nil, fmt.Errorf("format %s: %w", name, err)
	}
	if err := writeNonZero(rw, buf, os.Getpagesize()); err != nil {
		return nil, fmt.Errorf("format %s: %w", name, err)
	}
	return &connSegFile{rw: rw, desc: wire.ConnSegDesc{ConnID: cd.ConnID, PubID: cd.PubID, SubID: cd.SubID,
		Capacity: cd.DataCap, ReturnCapacity: cd.ReturnCap, Bound: cd.Bound, MaxHeld: cd.MaxHeld, Policy: wpol, Size: a.Bytes}}, nil
}

// scratch returns n zeroed bytes of the server's formatting buffer
// (8-byte aligned, as a Go allocation of 8 bytes or more is), grown as
// needed and reused: only the Serve goroutine formats. Zeroed, so bytes a
// format leaves alone (a segment larger than its layout) are not written
// from an earlier one.
func (f *segFiles) scratch(n int) []byte {
	if cap(f.fmtBuf) < n {
		f.fmtBuf = make([]byte, n)
	}
	b := f.fmtBuf[:n]
	clear(b)
	return b
}

// writeNonZero writes buf at offset 0 of f, a new memfd whose bytes all
// read as zero, page by page, skipping pages of buf that are all zero
// (they would only allocate memory); adjacent pages go in one pwrite.
func writeNonZero(f *os.File, buf []byte, page int) error {
	start := -1 // first page of the run being collected
	flush := func(end int) error {
		if start < 0 {
			return nil
		}
		_, err := f.WriteAt(buf[start:end], int64(start))
		start = -1
		return err
	}
	for off := 0; off < len(buf); off += page {
		end := min(off+page, len(buf))
		if allZero(buf[off:end]) {
			if err := flush(off); err != nil {
				return err
			}
			continue
		}
		if start < 0 {
			start = off
		}
	}
	return flush(len(buf))
}

func allZero(b []byte) bool {
	for _, c := range b {
		if c != 0 {
			return false
		}
	}
	return true
}

// grantSegments sends what the core granted: the connection segment, then
// the data segments, one push and one fd each.
func (s *Server) grantSegments(a core.GrantSegments) {
	c := s.conns[a.Conn]
	if c == nil || !c.hello {
		return
	}
	if a.Connection != 0 {
		f := s.segs.conn[a.Connection]
		if f == nil {
			s.log.Error("core granted a connection segment the server does not have", "conn", a.Connection)
		} else {
			s.send(c, 0, &wire.ConnSegmentAdded{Seg: f.desc}, []*os.File{f.rw})
		}
	}
	for _, i := range a.Data {
		f := s.segs.data[dataKey{a.Pub, i}]
		if f == nil {
			s.log.Error("core granted a data segment the server does not have", "pub", a.Pub, "index", i)
			continue
		}
		d, file := f.desc, f.rw
		if a.ReadOnly {
			d.ReadOnly, file = true, f.ro
		}
		if s.conns[a.Conn] != c {
			return // the send failed and dropped the client
		}
		s.send(c, 0, &wire.DataSegmentAdded{Seg: d}, []*os.File{file})
	}
}

// closeSegments closes every owned segment fd (Server.Close).
func (s *Server) closeSegments() error {
	var errs []error
	for k, f := range s.segs.data {
		errs = append(errs, f.close())
		delete(s.segs.data, k)
	}
	for k, f := range s.segs.conn {
		errs = append(errs, f.rw.Close())
		delete(s.segs.conn, k)
	}
	return errors.Join(errs...)
}

// segmentReports steps the outcomes queued by the actions just performed
// (segments created or not).
func (s *Server) segmentReports() {
	for len(s.segs.reports) > 0 {
		ev := s.segs.reports[0]
		n := copy(s.segs.reports, s.segs.reports[1:])
		s.segs.reports[n] = nil
		s.segs.reports = s.segs.reports[:n]
		s.step(ev)
	}
}
