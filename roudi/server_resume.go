package roudi

import (
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"time"

	"github.com/parallax-ipc/parallax/roudi/internal/core"

	"github.com/parallax-ipc/parallax/internal/wire"
)

// Router restart.
//
// A router killed with SIGKILL leaves its clients alive: publishers and
// subscribers keep exchanging samples over their own segments without a
// router. A new router of the same domain (New runs only while it holds the
// domain lock, server_lock.go) reads the identity file of the previous one
// and waits, for the grace period, for the clients whose processes still
// live: they reconnect, resume with their token and hand their segments
// back (server_adopt.go, core resume_owned.go). After the grace period,
// whatever belonged to processes that did not come back is forgotten.

// DefaultResumeGrace is how long an adopting router waits for survivors to
// resume before reclaiming what the others held.
const DefaultResumeGrace = 3 * time.Second

// routerAlive reports whether a router answers on the socket path.
func routerAlive(path string) bool {
	c, err := net.DialTimeout("unixpacket", path, 200*time.Millisecond)
	if err != nil {
		return false
	}
	c.Close()
	return true
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

// resumeDeadline ends the grace period: the core reclaims the ids that did
// not resume.
func (s *Server) resumeDeadline() {
	s.resumeDone = true
	s.step(core.ResumeDeadline{})
}

// resumeRequest translates a wire Resume.
func (s *Server) resumeRequest(c *serverConn, reqID uint32, m *wire.Resume) {
	files := s.resumeFds
	s.resumeFds = nil
	req := core.ResumeClient{OldClient: core.ClientID(m.OldClient)}
	copy(req.Token[:], m.Token) // a short or missing token is a wrong one
	for _, p := range m.Publishers {
		req.Pubs = append(req.Pubs, core.RestorePub{ID: core.PubID(p.PubID), Topic: p.Topic, Type: core.TypeInfo(p.Type), History: int(p.History),
			Kind: core.EndpointKind(p.Kind)})
	}
	for _, sb := range m.Subscribers {
		req.Subs = append(req.Subs, core.RestoreSub{ID: core.SubID(sb.SubID), Topic: sb.Topic, Type: core.TypeInfo(sb.Type), Capacity: int(sb.QueueCapacity),
			History: int(sb.History), Policy: core.Policy(sb.Policy),
			Kind: core.EndpointKind(sb.Kind), Pair: core.PubID(sb.Pair), MaxHeld: int(sb.MaxHeld)})
	}
	for _, l := range m.Connections {
		req.Links = append(req.Links, core.RestoreLink{ID: core.ConnectionID(l.ConnID), Pub: core.PubID(l.PubID), Sub: core.SubID(l.SubID),
			Capacity: int(l.Capacity), Policy: core.Policy(l.Policy)})
	}
	if err := s.adoptResumeFds(m, files, &req); err != nil { // server_adopt.go
		s.log.Warn("resume refused: a handed-back segment failed its check", "client", m.OldClient, "pid", c.sc.Cred.PID, "err", err)
		s.replyError(c, reqID, fmt.Errorf("resume client %d: %w", m.OldClient, err))
		return
	}
	s.step(core.ClientRequest{Conn: c.id, ReqID: reqID, Req: req})
	s.endAdopting()
}
