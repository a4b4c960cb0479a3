package roudi

import (
	"github.com/parallax-ipc/parallax/internal/wire"
	"github.com/parallax-ipc/parallax/roudi/internal/core"
	"github.com/parallax-ipc/parallax/roudi/procmon"
)

// Connection life cycle in the owned model (design §4.1, core death.go):
// the server's part is to push what the core decides and to confirm
// deaths. A subscriber whose control connection ended while its process
// may live keeps its connections closing until the process monitor
// reports the exit, so the server keeps watching such a process after its
// last connection is gone (lingering) and steps core.ProcessExited when it
// dies. Without a monitor the end of a process's last control connection
// is the only signal there is, and the server takes it as the death.

// maxLinger bounds the processes watched after their last connection
// ended. Past it a process is no longer watched: its closing connections
// then stay closing (their chunks outstanding on the publishers) until the
// router restarts, which never frees memory a live process may use.
const maxLinger = 4096

// wireRemovedCode maps the core's removal code to the wire's (same values,
// pinned by TestRemovedCodesMatch).
func wireRemovedCode(c core.RemovedCode) wire.RemovedCode { return wire.RemovedCode(c) }

// connectionClosing pushes a core.ConnectionClosing.
func (s *Server) connectionClosing(a core.ConnectionClosing) {
	if c := s.conns[a.Conn]; c != nil {
		s.push(c, &wire.ConnectionClosing{ConnID: uint32(a.Connection), PubID: uint32(a.Pub), SubID: uint32(a.Sub), Reason: a.Reason})
	}
}

// linger keeps watching pid, whose last control connection just ended, in
// the owned model; it reports whether it does (the caller then does not
// unwatch it). Runs on the Serve goroutine.
func (s *Server) linger(pid int32) bool {
	if s.mon.m == nil || s.mon.m.Kind() == procmon.KindNone {
		return false
	}
	if len(s.mon.linger) >= maxLinger {
		s.log.Warn("process no longer watched after its connection ended: too many such processes", "pid", pid, "limit", maxLinger)
		return false
	}
	if s.mon.linger == nil {
		s.mon.linger = make(map[int32]bool)
	}
	s.mon.linger[pid] = true
	return true
}

// unlinger takes pid off the lingering watches when it connects again (its
// watch goes on) and reports whether it was lingering.
func (s *Server) unlinger(pid int32) bool {
	if !s.mon.linger[pid] {
		return false
	}
	delete(s.mon.linger, pid)
	return true
}

// confirmWithoutMonitor steps the death of c's process when no monitor can
// confirm it and c was its last control connection (owned model only).
// Runs on the Serve goroutine after c was dropped.
func (s *Server) confirmWithoutMonitor(c *serverConn) {
	pid := c.sc.Cred.PID
	if pid <= 0 || (s.mon.m != nil && s.mon.m.Kind() != procmon.KindNone) {
		return
	}
	for _, o := range s.conns {
		if o.sc.Cred.PID == pid {
			return
		}
	}
	s.step(core.ProcessExited{PID: pid})
}
