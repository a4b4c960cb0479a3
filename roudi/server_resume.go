package roudi

import (
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/parallax-ipc/parallax/roudi/internal/core"

	"github.com/parallax-ipc/parallax"
	"github.com/parallax-ipc/parallax/internal/sys"
	"github.com/parallax-ipc/parallax/internal/wire"
	"github.com/parallax-ipc/parallax/mempool"
	"github.com/parallax-ipc/parallax/ringbuf"
	"github.com/parallax-ipc/parallax/segment"
)

// Router restart.
//
// A router killed with SIGKILL leaves its segments alive in its clients:
// they keep them mapped (and their fds open), so publishers and subscribers
// keep exchanging samples without a router. A new router of the same domain
// adopts those segments instead of creating fresh ones: it finds the
// management and payload memfds of the domain among the surviving
// processes' fds (/proc/<pid>/fd, by memfd name), reopens them read-write,
// makes sure that the router recorded in them is dead (New adopts only
// while it holds the domain lock, see server_lock.go, and never a segment
// whose recorded router pid is alive),
// checks that their layout is the one its config gives, and attaches to the
// pools as they are — chunks held by survivors stay held. Clients reconnect
// and resume (core_resume.go); after the grace period, whatever belonged to
// processes that did not come back is reclaimed, and rings nobody resumed
// are drained.

// DefaultResumeGrace is how long an adopting router waits for survivors to
// resume before reclaiming what the others held.
const DefaultResumeGrace = 3 * time.Second

// memfdLink is the /proc/<pid>/fd link text of a parallax memfd.
func memfdLink(name string) string { return "/memfd:parallax-" + name + " (deleted)" }

// findMemfds returns, for each wanted memfd link text, one /proc path of an
// fd that refers to it (in any other process we may inspect).
func findMemfds(match func(link string) (key string, ok bool)) map[string]string {
	found := map[string]string{}
	procs, err := os.ReadDir("/proc")
	if err != nil {
		return found
	}
	// Our own process is skipped: a router restarted inside the process
	// whose clients hold the old segments (tests, embedded routers) starts
	// fresh, and those in-process clients re-create their endpoints.
	self := strconv.Itoa(os.Getpid())
	for _, p := range procs {
		if _, err := strconv.Atoi(p.Name()); err != nil || p.Name() == self {
			continue
		}
		dir := filepath.Join("/proc", p.Name(), "fd")
		fds, err := os.ReadDir(dir)
		if err != nil {
			continue
		}
		for _, fd := range fds {
			path := filepath.Join(dir, fd.Name())
			link, err := os.Readlink(path)
			if err != nil {
				continue
			}
			if key, ok := match(link); ok {
				if _, have := found[key]; !have {
					found[key] = path
				}
			}
		}
	}
	return found
}

// routerAlive reports whether a router answers on the socket path.
func routerAlive(path string) bool {
	c, err := net.DialTimeout("unixpacket", path, 200*time.Millisecond)
	if err != nil {
		return false
	}
	c.Close()
	return true
}

// tryAdopt looks for the segments of a previous router of this domain among
// the surviving processes and adopts them. It returns false (and leaves s
// untouched) when there is nothing to adopt or it does not fit this
// router's configuration.
func (s *Server) tryAdopt() (adopted bool, err error) {
	if s.opts.NoAdopt || routerAlive(s.path) {
		return false, nil
	}
	mgmtLink := memfdLink(s.cfg.Domain + "-mgmt")
	poolPrefix := "/memfd:parallax-" + s.cfg.Domain + "-pool"
	paths := findMemfds(func(link string) (string, bool) {
		if link == mgmtLink {
			return "mgmt", true
		}
		if rest, ok := strings.CutPrefix(link, poolPrefix); ok {
			id, _, ok := strings.Cut(rest, "-")
			if _, err := strconv.Atoi(id); ok && err == nil && strings.HasSuffix(link, " (deleted)") {
				return "pool" + id, true
			}
		}
		return "", false
	})
	if paths["mgmt"] == "" {
		return false, nil
	}
	var opened []*segment.Mapped
	defer func() {
		if !adopted {
			for _, m := range opened {
				m.Close()
			}
		}
	}()
	open := func(path string, size int64) (*segment.Mapped, error) {
		f, err := os.OpenFile(path, os.O_RDWR, 0)
		if err != nil {
			return nil, err
		}
		m, err := segment.Open(f, segment.OpenOptions{ExpectedSize: size, RequireSeals: true})
		if err != nil {
			f.Close()
			return nil, err
		}
		opened = append(opened, m)
		return m, nil
	}
	mgmt, err := open(paths["mgmt"], int64(s.layout.Size))
	if err != nil {
		s.log.Warn("found a previous router's management segment but cannot adopt it; starting fresh", "path", paths["mgmt"], "err", err)
		return false, nil
	}
	h, err := wire.ReadMgmtHeader(mgmt.Bytes())
	if err != nil || h.ArenaOff != uint64(s.layout.ArenaOff) || h.HoldsOff != uint64(s.layout.HoldsOff) ||
		h.HoldsCount != uint32(s.layout.HoldsCount) || h.Pools != uint32(len(s.layout.Pools)) {
		s.log.Warn("a previous router's management segment has another layout (config changed?); starting fresh", "err", err)
		return false, nil
	}
	// We hold the domain lock, so no router of this domain and runtime
	// directory lives. A segment whose router does (one of the same domain
	// name under another runtime directory) is never taken over.
	if pid := int(h.RouterPID); pid != os.Getpid() && sys.ProcessAlive(pid) {
		s.log.Warn("the management segment of this domain name belongs to a live router (another runtime directory?); starting fresh",
			"router_pid", pid, "path", paths["mgmt"])
		return false, nil
	}
	set := mempool.NewSet(mempool.SetOptions{})
	var payload []*segment.Mapped
	for _, pa := range s.layout.Pools {
		p := paths[fmt.Sprintf("pool%d", pa.ID)]
		if p == "" {
			s.log.Warn("no survivor holds the payload segment of a pool; starting fresh", "pool", pa.ID)
			return false, nil
		}
		seg, err := open(p, 0)
		if err != nil || seg.Len() < pa.Class.PayloadSize() {
			s.log.Warn("cannot adopt a payload segment; starting fresh", "pool", pa.ID, "err", err)
			return false, nil
		}
		pool, err := mempool.Attach(mgmt.Bytes()[pa.Offset:pa.Offset+pa.Size], seg.Bytes())
		if err != nil || pool.Class() != pa.Class || pool.ID() != pa.ID {
			s.log.Warn("adopted pool does not match the config; starting fresh", "pool", pa.ID, "err", err)
			return false, nil
		}
		if err := set.Add(pool); err != nil {
			return false, nil
		}
		payload = append(payload, seg)
	}
	var ro []*os.File
	for _, seg := range payload {
		f, err := seg.ReadOnlyFile()
		if err != nil {
			for _, f := range ro {
				f.Close()
			}
			return false, nil
		}
		ro = append(ro, f)
	}
	s.mgmt, s.payload, s.roFiles, s.pools = mgmt, payload, ro, set
	// The previous router's pid is history; ours goes in the header.
	h.RouterPID = uint64(os.Getpid())
	wire.PutMgmtHeader(mgmt.Bytes(), h)
	s.adopted = true
	return true, nil
}

// survivingClients returns the identity records of a previous router's
// clients whose processes still live (owned model): they may resume.
// A record whose pid now names another process only reserves its id for
// the grace period; the resume token keeps that process out.
func (s *Server) survivingClients() []core.ClientIdentity {
	if s.opts.NoAdopt || routerAlive(s.path) {
		return nil
	}
	var live []core.ClientIdentity
	for _, in := range s.idents.all() {
		if in.PID > 0 && in.PID != int32(os.Getpid()) {
			if _, err := os.Stat(filepath.Join("/proc", strconv.Itoa(int(in.PID)))); err == nil {
				live = append(live, in)
			}
		}
	}
	return live
}

// Adopted reports whether the router adopted the segments of a previous
// router of its domain (and waits for its clients to resume).
func (s *Server) Adopted() bool { return s.adopted }

// adoptedClients returns the client ids whose hold tables the adopted
// management segment holds.
func (s *Server) adoptedClients() []core.ClientID {
	var ids []core.ClientID
	for c := 1; c <= s.layout.HoldsCount; c++ {
		if t, err := mempool.AttachHoldTable(s.holdRegion(core.ClientID(c))); err == nil && int(t.Client()) == c {
			ids = append(ids, core.ClientID(c))
		}
	}
	return ids
}

// resumeDeadline ends the grace period: the core reclaims the ids that did
// not resume and names the arena ranges it does not account for, whose
// rings nobody resumed (core.DrainOrphans, performed by drainOrphanRings).
func (s *Server) resumeDeadline() {
	s.resumeDone = true
	s.step(core.ResumeDeadline{})
}

// drainOrphanRings releases the refs queued in the rings found in free, the
// ranges of the adopted arena outside every region the core knows:
// connections whose both ends died while no router ran.
func (s *Server) drainOrphanRings(free []core.Region) {
	if s.mgmt == nil {
		return // owned model: no arena rings
	}
	mem := s.mgmt.Bytes()
	drained := 0
	for _, f := range free {
		if f.End() > uint64(len(mem)) || f.End() < f.Offset {
			s.log.Error("orphan drain: range outside the management segment", "range", f.String())
			continue
		}
		for off, end := int(f.Offset), int(f.End()); off < end; {
			ring, err := ringbuf.Attach(mem[off:end])
			if err != nil {
				off += core.RegionAlign
				continue
			}
			size := ringbuf.Size(ring.Cap())
			drained += s.drainBounded(ring, "orphaned ring", core.Region{Offset: uint64(off), Size: uint64(size)})
			clear(mem[off : off+8]) // the magic: it is no ring any more
			off += (size + core.RegionAlign - 1) &^ (core.RegionAlign - 1)
		}
	}
	if drained > 0 {
		s.log.Info("drained rings nobody resumed", "chunks", drained)
	}
	s.needSweep = true
}

// resumeRequest translates a wire Resume.
func (s *Server) resumeRequest(c *serverConn, reqID uint32, m *wire.Resume) {
	files := s.resumeFds
	s.resumeFds = nil
	if s.mgmt == nil { // owned model: no management segment, nothing to match
		if m.MgmtInode != 0 {
			closeFiles(files)
			s.replyError(c, reqID, fmt.Errorf("resume: %w: this router runs the owned memory model and has no management segment (you claim inode %d)", parallax.ErrProtocol, m.MgmtInode))
			return
		}
	} else if st, err := s.mgmt.File().Stat(); err == nil {
		if sys, ok := st.Sys().(*syscall.Stat_t); ok && sys.Ino != m.MgmtInode {
			closeFiles(files)
			s.replyError(c, reqID, fmt.Errorf("resume: %w: this router did not adopt the segments you map (management inode %d, ours %d)", parallax.ErrProtocol, m.MgmtInode, sys.Ino))
			return
		}
	}
	req := core.ResumeClient{OldClient: core.ClientID(m.OldClient)}
	copy(req.Token[:], m.Token) // a short or missing token is a wrong one
	for _, p := range m.Publishers {
		req.Pubs = append(req.Pubs, core.RestorePub{ID: core.PubID(p.PubID), Topic: p.Topic, Type: core.TypeInfo(p.Type), History: int(p.History),
			Kind: core.EndpointKind(p.Kind)})
	}
	for _, sb := range m.Subscribers {
		req.Subs = append(req.Subs, core.RestoreSub{ID: core.SubID(sb.SubID), Topic: sb.Topic, Type: core.TypeInfo(sb.Type), Capacity: int(sb.QueueCapacity),
			History: int(sb.History), Policy: core.Policy(sb.Policy), Notifier: core.Region{Offset: sb.NotifierOffset, Size: uint64(alignUp(ringbuf.NotifierSize, core.RegionAlign))},
			Kind: core.EndpointKind(sb.Kind), Pair: core.PubID(sb.Pair), MaxHeld: int(sb.MaxHeld)})
	}
	for _, l := range m.Connections {
		req.Links = append(req.Links, core.RestoreLink{ID: core.ConnectionID(l.ConnID), Pub: core.PubID(l.PubID), Sub: core.SubID(l.SubID),
			Ring: core.Region{Offset: l.RingOffset, Size: l.RingSize}, Capacity: int(l.Capacity), Policy: core.Policy(l.Policy)})
	}
	if err := s.adoptResumeFds(m, files, &req); err != nil { // server_adopt.go
		s.log.Warn("resume refused: a handed-back segment failed its check", "client", m.OldClient, "pid", c.sc.Cred.PID, "err", err)
		s.replyError(c, reqID, fmt.Errorf("resume client %d: %w", m.OldClient, err))
		return
	}
	s.step(core.ClientRequest{Conn: c.id, ReqID: reqID, Req: req})
	s.endAdopting()
}
