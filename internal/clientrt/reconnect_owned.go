package clientrt

import (
	"log/slog"
	"os"
	"syscall"

	"github.com/parallax-ipc/parallax/dataseg"
	"github.com/parallax-ipc/parallax/internal/sys"
	"github.com/parallax-ipc/parallax/internal/wire"
	"github.com/parallax-ipc/parallax/segment"
)

// Resuming in the owned model (docs/design/memory-ownership.md §4.3,
// §8.7): the runtime keeps an fd of every owned segment it maps, and hands
// them back to a restarted router inside the Resume — its publishers'
// read-write data segments and the segment of every connection it reports
// — so the router can take them over (it adopts owned memory only from
// the clients that map it) and grant them to later subscribers. The fds
// are the runtime's own (the mappings keep them); sending does not give
// them up.

// OwnedResumer is implemented by owned-model publisher endpoints: the
// loans bound the publisher asked the router for (0: the router's
// default), which the restarted router needs to size its growth, and the
// payload size it declared (0: none), which decides whether it may ask for
// undersized classes.
type OwnedResumer interface {
	ResumeSizing() (maxLoans, maxPayload uint32)
}

// fileIdentity returns the inode and size of f.
func fileIdentity(f *os.File) (ino uint64, size int64) {
	if f == nil {
		return 0, 0
	}
	st, err := f.Stat()
	if err != nil {
		return 0, 0
	}
	if s, ok := st.Sys().(*syscall.Stat_t); ok {
		return s.Ino, st.Size()
	}
	return 0, 0
}

// dataSegDesc describes a mapped data segment of a local publisher.
func dataSegDesc(seg *dataseg.Segment, m *segment.Mapped) (wire.DataSegDesc, uint64) {
	d := seg.Desc()
	ino, size := fileIdentity(m.File())
	w := wire.DataSegDesc{PubID: d.PubID, Index: d.Index, Kind: wire.KindMemfd, ChunkSize: d.ChunkSize, Count: d.Count,
		PageSize: d.PageSize, Size: uint64(size)}
	switch m.Kind() {
	case segment.KindHugepage:
		w.Kind = wire.KindHugetlb
	case segment.KindFile:
		w.Kind = wire.KindFile
	}
	return w, ino
}

// addOwnedResume adds the owned memory of this process to m: the data
// segments of every publisher m names and the segment of every connection
// m names; a connection whose segment this process does not map is
// dropped from m (the router removes it when its other end resumes or the
// grace ends). It returns the fds to send, in the wire's order.
// Runtime.mu held.
func (rt *Runtime) addOwnedResume(m *wire.Resume) []*os.File {
	var files []*os.File
	for _, rp := range m.Publishers {
		p := rt.owned.own[rp.PubID]
		if p == nil {
			continue
		}
		pm := wire.ResumePubMemory{PubID: rp.PubID}
		if or, ok := rt.pubs[rp.PubID].(OwnedResumer); ok {
			pm.MaxLoans, pm.MaxPayload = or.ResumeSizing()
		}
		for i, seg := range p.Segments() {
			if seg == nil || i >= len(p.maps) || p.maps[i] == nil {
				continue
			}
			d, ino := dataSegDesc(seg, p.maps[i])
			pm.Data = append(pm.Data, wire.ResumeDataSeg{Seg: d, Inode: ino})
			files = append(files, p.maps[i].File())
		}
		if len(pm.Data) > 0 {
			m.OwnedPubs = append(m.OwnedPubs, pm)
		}
	}
	conns := m.Connections[:0]
	for _, c := range m.Connections {
		cm := rt.owned.conns[c.ConnID]
		if cm == nil || cm.gone {
			slog.Warn("parallax: resume: connection without a mapped segment; not handed back", "conn", c.ConnID)
			continue
		}
		conns = append(conns, c)
		ino, _ := fileIdentity(cm.m.File())
		m.ConnSegs = append(m.ConnSegs, wire.ResumeConnSeg{Seg: cm.desc, Inode: ino})
		files = append(files, cm.m.File())
	}
	m.Connections = conns
	return files
}

// dupFiles dups every file of fs (none on error).
func dupFiles(fs []*os.File) ([]*os.File, error) {
	out := make([]*os.File, 0, len(fs))
	for _, f := range fs {
		d, err := sys.DupFile(f)
		if err != nil {
			closeAll(out)
			return nil, err
		}
		out = append(out, d)
	}
	return out, nil
}
