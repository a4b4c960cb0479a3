package core

import (
	"fmt"
	"log/slog"

	"github.com/parallax-ipc/parallax"
)

// Resuming in the owned model (design §4.3). Clients own everything they
// map: a resuming client hands back, with its ResumeClient, the data
// segments of its publishers (read-write fds) and the segment of each
// connection one of its endpoints is part of. The server has checked every
// fd (memfd of this router's uid, mode 0600, sealed, named and laid out as
// claimed, inode as claimed); the core checks that the client may hand
// them back — data segments only of its own publishers, every index once,
// segment 0 present, connection segments only of connections it is an end
// of, no inode handed back twice — and refuses the whole resume otherwise.
// It then rebuilds the publishers' memory records and, when both ends of a
// connection have handed back the same inode (or one client is both ends),
// the connection's record, live. It tells the server which fds to keep
// (KeepAdopted); the server closes the rest. A connection whose other end
// presented another inode is refused with the later resume; one whose
// other end never resumes is removed at the grace deadline as in the
// shared model.

// RestoreDataSeg is one data segment a resuming publisher handed back.
type RestoreDataSeg struct {
	Index     uint16
	ChunkSize uint32
	Count     uint32
	Bytes     uint64
	Huge      bool
	Inode     uint64
}

// RestoreConnSeg is the segment of a connection as one end handed it back.
type RestoreConnSeg struct {
	Bound   int
	MaxHeld int
	Bytes   uint64
	Inode   uint64
}

// KeepAdopted tells the server to keep the fds a resuming client handed
// back: data segments Data of publisher Pub, and the segment of
// Connection when it is not 0. Fds not named by a KeepAdopted of the
// resume's step are closed.
type KeepAdopted struct {
	Pub        PubID
	Data       []uint16
	Connection ConnectionID
}

func (KeepAdopted) isAction() {}

func (a KeepAdopted) String() string {
	if a.Connection != 0 {
		return fmt.Sprintf("keep-adopted conn-seg=%d", a.Connection)
	}
	return fmt.Sprintf("keep-adopted pub=%d data=%v", a.Pub, a.Data)
}

// adoptedInodes returns the inodes of every owned segment the core records.
func (r *Router) adoptedInodes() map[uint64]string {
	in := map[uint64]string{}
	for _, m := range r.mem.pubs {
		for i, s := range m.segs {
			if s.inode != 0 {
				in[s.inode] = fmt.Sprintf("data segment %d of publisher %d", i, m.id)
			}
		}
	}
	for _, cs := range r.mem.conns {
		if cs.inode != 0 {
			in[cs.inode] = fmt.Sprintf("segment of connection %d", cs.id)
		}
	}
	return in
}

// checkOwnedResume validates the owned part of req before anything
// changes.
func (r *Router) checkOwnedResume(c *client, req ResumeClient) error {
	seen := r.adoptedInodes()
	claim := func(inode uint64, what string) error {
		if prev, dup := seen[inode]; dup {
			return fmt.Errorf("%w: %s: inode %d is already adopted as the %s", parallax.ErrPermissionDenied, what, inode, prev)
		}
		seen[inode] = what
		return nil
	}
	mine := map[PubID]bool{}
	for _, p := range req.Pubs {
		mine[p.ID] = true
		idx := map[uint16]bool{}
		for _, d := range p.Data {
			what := fmt.Sprintf("data segment %d of publisher %d", d.Index, p.ID)
			if idx[d.Index] || d.Index >= maxSegIndex || d.Count == 0 || d.ChunkSize == 0 {
				return fmt.Errorf("%w: %s: handed back twice or out of range", parallax.ErrProtocol, what)
			}
			idx[d.Index] = true
			if err := claim(d.Inode, what); err != nil {
				return err
			}
		}
		if !idx[0] {
			return fmt.Errorf("%w: publisher %d: its data segment 0 was not handed back", parallax.ErrProtocol, p.ID)
		}
	}
	subs := map[SubID]bool{}
	for _, s := range req.Subs {
		subs[s.ID] = true
	}
	for _, l := range req.Links {
		what := fmt.Sprintf("segment of connection %d", l.ID)
		if l.Seg == nil {
			return fmt.Errorf("%w: %s was not handed back", parallax.ErrProtocol, what)
		}
		if !mine[l.Pub] && !subs[l.Sub] {
			return fmt.Errorf("%w: %s: neither end (publisher %d, subscriber %d) is the client's", parallax.ErrPermissionDenied, what, l.Pub, l.Sub)
		}
		if pl, ok := r.pendingLinks[l.ID]; ok && pl.declaredBy != c.id && pl.Seg != nil {
			if pl.Seg.Inode != l.Seg.Inode {
				return fmt.Errorf("%w: %s: inode %d is not the one its other end handed back (%d)", parallax.ErrPermissionDenied, what, l.Seg.Inode, pl.Seg.Inode)
			}
			delete(seen, pl.Seg.Inode) // the same segment, from its other end
		}
		if prev, dup := seen[l.Seg.Inode]; dup && prev != what {
			return fmt.Errorf("%w: %s: inode %d is already adopted as the %s", parallax.ErrPermissionDenied, what, l.Seg.Inode, prev)
		}
		seen[l.Seg.Inode] = what
	}
	return nil
}

// adoptPubMem rebuilds the memory record of restored publisher p from the
// data segments its client handed back.
func (r *Router) adoptPubMem(p *publisher, rp RestorePub) {
	if len(rp.Data) == 0 {
		return
	}
	m := &pubMem{id: p.id, topic: p.topic.name, maxLoans: rp.MaxLoans, history: rp.History,
		undeclared: rp.Type.Size == 0 && rp.MaxPayload == 0}
	if m.maxLoans == 0 {
		m.maxLoans = r.cfg.Memory.DefaultMaxLoans
	}
	for _, d := range rp.Data {
		if d.Index == 0 {
			m.chunkSize = d.ChunkSize
		}
		for len(m.segs) <= int(d.Index) {
			m.segs = append(m.segs, dataSegRec{state: segFailed})
		}
		m.segs[d.Index] = dataSegRec{chunk: d.ChunkSize, count: d.Count, bytes: d.Bytes, huge: d.Huge, state: segLive, inode: d.Inode}
		m.bytes += d.Bytes
		r.mem.shared += d.Bytes
	}
	keep := KeepAdopted{Pub: p.id}
	for i, s := range m.segs {
		if s.state == segLive {
			keep.Data = append(keep.Data, uint16(i))
			if s.chunk == m.chunkSize {
				m.chunks += uint64(s.count)
			}
		}
	}
	r.mem.pubs[p.id] = m
	r.emit(keep)
	if r.mem.shared > r.cfg.Memory.MaxSharedBytes || m.bytes > r.cfg.Memory.MaxPublisherBytes {
		r.log(slog.LevelWarn, "adopted publisher memory exceeds the limits of this router's config", slog.Int("pub", int(p.id)), slog.Uint64("bytes", m.bytes))
	}
}

// adoptConnSeg records restored connection l, live, on the segment seg
// (handed back by the end resuming now; the other end, if it resumed
// before, handed back the same inode).
func (r *Router) adoptConnSeg(l *connection, seg *RestoreConnSeg) {
	if seg == nil {
		return
	}
	m := r.mem.pubs[l.pub.id]
	if m == nil {
		r.log(slog.LevelWarn, "resume: connection of a publisher without adopted memory; not recorded", slog.Int("conn", int(l.id)))
		return
	}
	cs := &connSeg{id: l.id, pub: m, sub: l.sub.id, pubClient: l.pub.client.id, subClient: l.sub.client.id,
		pubConn: l.pub.client.conn, bound: seg.Bound, bytes: seg.Bytes, state: ConnLive, created: true, inode: seg.Inode}
	r.mem.conns[l.id] = cs
	m.conns++
	m.connBound += uint64(seg.Bound)
	r.mem.shared += seg.Bytes
	r.emit(KeepAdopted{Connection: l.id})
}
