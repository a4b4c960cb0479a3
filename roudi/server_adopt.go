package roudi

import (
	"errors"
	"fmt"
	"os"
	"strconv"
	"strings"
	"syscall"

	"github.com/parallax-ipc/parallax"
	"github.com/parallax-ipc/parallax/dataseg"
	"github.com/parallax-ipc/parallax/internal/sys"
	"github.com/parallax-ipc/parallax/internal/wire"
	"github.com/parallax-ipc/parallax/ringbuf"
	"github.com/parallax-ipc/parallax/roudi/internal/core"
	"github.com/parallax-ipc/parallax/segment"
)

// Adopting owned segments from resuming clients (design §4.3, §8.7). In
// the owned model the router takes owned memory back only from the clients
// that map it, never from /proc: a resuming publisher hands back the
// read-write fds of its data segments, and both ends of a connection hand
// back its segment, beside their wire.Resume. Every fd is checked before
// the core sees the resume, and one that fails refuses the whole resume
// (the client is not adopted):
//
//   - fstat: a regular file owned by this router's uid, mode 0600 exactly,
//     of the size and inode the client claims;
//   - /proc/self/fd link: a memfd named as this router names that segment
//     (a file-backed data segment: memory.path/<name>, unlinked)
//     ("parallax-plx:<domain>:p<pub>.<index>" or "…:c<conn>"), which a
//     client cannot rename, so a segment of another publisher or
//     connection is refused by name;
//   - opened read-write (fdinfo flags), sealed shrink|grow|seal (and not
//     write-sealed), as the router seals (files cannot be sealed);
//   - the layout: mapped read-only once, the dataseg header or the
//     connection header (ringbuf.AttachConn, which writes nothing) must
//     equal the descriptor; a data segment's kind (memfd or hugetlb) too.
//
// The core then checks that the client may hand each one back and says
// which to keep (core.KeepAdopted); the rest are closed after the step.

// adoptKey names a handed-back fd during a resume's step: a data segment
// (pub, index) or a connection segment (conn).
type adoptKey struct {
	pub   core.PubID
	index uint16
	conn  core.ConnectionID
}

type adoptedFile struct {
	f    *os.File
	data wire.DataSegDesc
	conn wire.ConnSegDesc
}

// Errors of adoption; each names the check that failed.
var (
	errAdoptOwner  = errors.New("not owned by the router's uid")
	errAdoptMode   = errors.New("mode is not 0600")
	errAdoptName   = errors.New("not the memfd the router named for it")
	errAdoptSeals  = errors.New("not sealed as the router seals")
	errAdoptAccess = errors.New("not opened read-write")
	errAdoptInode  = errors.New("inode differs from the claimed one")
	errAdoptSize   = errors.New("size differs from the descriptor")
)

// checkAdoptFile runs the fstat, name, access and seal checks on f for the
// segment whose /proc/self/fd link must read wantLink, with size bytes and
// inode ino. A file-backed data segment (unsealed) has sealed false.
func checkAdoptFile(f *os.File, wantLink string, sealed bool, size, ino uint64) error {
	fi, err := f.Stat()
	if err != nil {
		return err
	}
	st, ok := fi.Sys().(*syscall.Stat_t)
	if !ok {
		return fmt.Errorf("fstat: %w", parallax.ErrNotSupported)
	}
	fd := int(f.Fd())
	link, _ := sys.FdPath(fd)
	seals, serr := sys.GetSeals(fd)
	const want = sys.F_SEAL_SHRINK | sys.F_SEAL_GROW | sys.F_SEAL_SEAL
	switch {
	case !fi.Mode().IsRegular():
		return fmt.Errorf("%w: %s is not a regular file", errAdoptName, link)
	case int(st.Uid) != os.Geteuid():
		return fmt.Errorf("%w: uid %d, router %d", errAdoptOwner, st.Uid, os.Geteuid())
	case st.Mode&0o7777 != 0o600:
		return fmt.Errorf("%w: %#o", errAdoptMode, st.Mode&0o7777)
	case st.Ino != ino:
		return fmt.Errorf("%w: inode %d, claimed %d", errAdoptInode, st.Ino, ino)
	case uint64(st.Size) != size:
		return fmt.Errorf("%w: %d bytes, descriptor %d", errAdoptSize, st.Size, size)
	case link != wantLink:
		return fmt.Errorf("%w: %q, want %q", errAdoptName, link, wantLink)
	case !sealed:
	case serr != nil:
		return fmt.Errorf("%w: %w", errAdoptSeals, serr)
	case seals&want != want || seals&sys.F_SEAL_WRITE != 0:
		return fmt.Errorf("%w: seals %#x", errAdoptSeals, seals)
	}
	if rw, err := openedReadWrite(fd); err != nil || !rw {
		return fmt.Errorf("%w (%v)", errAdoptAccess, err)
	}
	return nil
}

// openedReadWrite reads the access mode of fd from /proc/self/fdinfo.
func openedReadWrite(fd int) (bool, error) {
	b, err := os.ReadFile("/proc/self/fdinfo/" + strconv.Itoa(fd))
	if err != nil {
		return false, err
	}
	for line := range strings.SplitSeq(string(b), "\n") {
		if v, ok := strings.CutPrefix(line, "flags:"); ok {
			fl, err := strconv.ParseUint(strings.TrimSpace(v), 8, 64)
			if err != nil {
				return false, err
			}
			return fl&syscall.O_ACCMODE == syscall.O_RDWR, nil
		}
	}
	return false, fmt.Errorf("fdinfo of fd %d has no flags", fd)
}

// mapForCheck maps a dup of f read-only for a layout check.
func mapForCheck(f *os.File, sealed bool) (*segment.Mapped, error) {
	dup, err := sys.DupFile(f)
	if err != nil {
		return nil, err
	}
	m, err := segment.Open(dup, segment.OpenOptions{ReadOnly: true, RequireSeals: sealed})
	if err != nil {
		dup.Close()
		return nil, err
	}
	return m, nil
}

// checkAdoptData checks a handed-back data segment fd against d and ino.
func (s *Server) checkAdoptData(f *os.File, d wire.DataSegDesc, ino uint64) error {
	name := fmt.Sprintf("plx:%s:p%d.%d", s.cfg.Domain, d.PubID, d.Index)
	sealed := !s.fileBacked() // files cannot be sealed (server_filebacking.go)
	if err := checkAdoptFile(f, s.dataSegLink(name), sealed, d.Size, ino); err != nil {
		return fmt.Errorf("data segment %d of publisher %d: %w", d.Index, d.PubID, err)
	}
	m, err := mapForCheck(f, sealed)
	if err != nil {
		return fmt.Errorf("data segment %d of publisher %d: %w", d.Index, d.PubID, err)
	}
	defer m.Close()
	want := segment.KindMemfd
	dd := dataseg.Desc{PubID: d.PubID, Index: d.Index, ChunkSize: d.ChunkSize, Count: d.Count, PageSize: d.PageSize}
	switch d.Kind {
	case wire.KindHugetlb:
		want, dd.Flags = segment.KindHugepage, dataseg.FlagHugetlb
	case wire.KindFile:
		want = segment.KindFile
	}
	if m.Kind() != want {
		return fmt.Errorf("data segment %d of publisher %d: a %v, the descriptor says %v: %w", d.Index, d.PubID, m.Kind(), want, parallax.ErrCorrupt)
	}
	if _, err := dataseg.Attach(m.Bytes(), dd, true); err != nil {
		return fmt.Errorf("data segment %d of publisher %d: %w", d.Index, d.PubID, err)
	}
	return nil
}

// checkAdoptConn checks a handed-back connection segment fd against d and
// ino.
func (s *Server) checkAdoptConn(f *os.File, d wire.ConnSegDesc, ino uint64) error {
	name := fmt.Sprintf("plx:%s:c%d", s.cfg.Domain, d.ConnID)
	if err := checkAdoptFile(f, "/memfd:parallax-"+name+" (deleted)", true, d.Size, ino); err != nil {
		return fmt.Errorf("segment of connection %d: %w", d.ConnID, err)
	}
	m, err := mapForCheck(f, true)
	if err != nil {
		return fmt.Errorf("segment of connection %d: %w", d.ConnID, err)
	}
	defer m.Close()
	if m.Kind() != segment.KindMemfd {
		return fmt.Errorf("segment of connection %d: a %v: %w", d.ConnID, m.Kind(), parallax.ErrCorrupt)
	}
	pol := ringbuf.DiscardOldest
	if d.Policy == wire.PolicyBlockProducer {
		pol = ringbuf.BlockProducer
	}
	if _, err := ringbuf.AttachConn(m.Bytes(), ringbuf.ConnDesc{ConnID: d.ConnID, PubID: d.PubID, SubID: d.SubID, Policy: pol,
		DataCap: d.Capacity, ReturnCap: d.ReturnCapacity, MaxHeld: d.MaxHeld, Bound: d.Bound}); err != nil {
		return fmt.Errorf("segment of connection %d: %w", d.ConnID, err)
	}
	return nil
}

// adoptResumeFds checks the owned part of m and its fds (which it takes
// over), fills req's owned fields and stashes the fds in s.adopting for the
// core's KeepAdopted. On error every fd is closed.
func (s *Server) adoptResumeFds(m *wire.Resume, files []*os.File, req *core.ResumeClient) (err error) {
	defer func() {
		if err != nil {
			closeFiles(files)
			s.adopting = nil
		}
	}()
	if n := m.ResumeFds(); n != len(files) {
		return fmt.Errorf("%w: %d fds for %d owned segments", parallax.ErrProtocol, len(files), n)
	}
	s.adopting = map[adoptKey]adoptedFile{}
	pubs := map[uint32]int{}
	for i, p := range req.Pubs {
		pubs[uint32(p.ID)] = i
	}
	next := 0
	for _, pm := range m.OwnedPubs {
		i, ok := pubs[pm.PubID]
		if !ok {
			return fmt.Errorf("%w: data segments handed back for publisher %d, which the resume does not name", parallax.ErrProtocol, pm.PubID)
		}
		req.Pubs[i].MaxLoans, req.Pubs[i].MaxPayload = int(pm.MaxLoans), int(pm.MaxPayload)
		for _, d := range pm.Data {
			f := files[next]
			next++
			if err := s.checkAdoptData(f, d.Seg, d.Inode); err != nil {
				return fmt.Errorf("%w: %w", parallax.ErrPermissionDenied, err)
			}
			s.adopting[adoptKey{pub: core.PubID(d.Seg.PubID), index: d.Seg.Index}] = adoptedFile{f: f, data: d.Seg}
			req.Pubs[i].Data = append(req.Pubs[i].Data, core.RestoreDataSeg{Index: d.Seg.Index, ChunkSize: d.Seg.ChunkSize,
				Count: d.Seg.Count, Bytes: d.Seg.Size, Huge: d.Seg.Kind == wire.KindHugetlb, Inode: d.Inode})
		}
	}
	links := map[uint32]int{}
	for i, l := range req.Links {
		links[uint32(l.ID)] = i
	}
	for _, cs := range m.ConnSegs {
		f := files[next]
		next++
		i, ok := links[cs.Seg.ConnID]
		if !ok || req.Links[i].Pub != core.PubID(cs.Seg.PubID) || req.Links[i].Sub != core.SubID(cs.Seg.SubID) || req.Links[i].Seg != nil {
			return fmt.Errorf("%w: segment of connection %d handed back for no connection the resume names (or twice)", parallax.ErrProtocol, cs.Seg.ConnID)
		}
		if err := s.checkAdoptConn(f, cs.Seg, cs.Inode); err != nil {
			return fmt.Errorf("%w: %w", parallax.ErrPermissionDenied, err)
		}
		s.adopting[adoptKey{conn: core.ConnectionID(cs.Seg.ConnID)}] = adoptedFile{f: f, conn: cs.Seg}
		req.Links[i].Seg = &core.RestoreConnSeg{Bound: int(cs.Seg.Bound), MaxHeld: int(cs.Seg.MaxHeld), Bytes: cs.Seg.Size, Inode: cs.Inode}
	}
	return nil
}

// keepAdopted moves handed-back fds the core adopted into the segment
// table (a data segment gets its read-only twin).
func (s *Server) keepAdopted(a core.KeepAdopted) {
	if s.segs.data == nil {
		s.segs = segFiles{data: map[dataKey]*dataSegFile{}, conn: map[core.ConnectionID]*connSegFile{}}
	}
	if a.Connection != 0 {
		k := adoptKey{conn: a.Connection}
		if af, ok := s.adopting[k]; ok {
			delete(s.adopting, k)
			s.segs.conn[a.Connection] = &connSegFile{desc: af.conn, rw: af.f}
		}
		return
	}
	for _, i := range a.Data {
		k := adoptKey{pub: a.Pub, index: i}
		af, ok := s.adopting[k]
		if !ok {
			continue
		}
		delete(s.adopting, k)
		ro, err := os.OpenFile(fmt.Sprintf("/proc/self/fd/%d", af.f.Fd()), os.O_RDONLY, 0)
		if err != nil {
			s.log.Error("adopted data segment: reopen read-only", "pub", a.Pub, "index", i, "err", err)
			_ = af.f.Close()
			continue
		}
		s.segs.data[dataKey{a.Pub, i}] = &dataSegFile{desc: af.data, rw: af.f, ro: ro}
	}
}

// endAdopting closes the handed-back fds the core did not adopt.
func (s *Server) endAdopting() {
	for _, af := range s.adopting {
		_ = af.f.Close()
	}
	s.adopting = nil
}
