package roudi

import (
	"fmt"
	"time"

	"github.com/parallax-ipc/parallax/roudi/internal/core"

	"github.com/parallax-ipc/parallax/roudi/procmon"
)

// serverMonitor is the server's process monitor and which connected
// clients it watches. It is owned by the Serve goroutine (the monitor
// itself is safe for concurrent use).
type serverMonitor struct {
	m     procmon.Monitor
	pids  map[int32]int         // watched pid → connections watching it
	conns map[core.ConnID]int32 // connection → the pid it watches
	// exited holds the exit time the monitor reported for a pid until its
	// reclaim (which follows in the same step) reads it.
	exited map[int32]time.Time
	// linger holds the processes still watched after their last
	// connection ended (server_lifecycle.go).
	linger map[int32]bool
}

// startMonitor creates the process monitor that Options.Monitor asks for
// and logs which one runs (and, in auto mode, why it is not eBPF).
func (s *Server) startMonitor() error {
	mode, err := procmon.ParseMode(string(s.opts.Monitor))
	if err != nil {
		return err
	}
	m, err := procmon.New(mode)
	if err != nil {
		return fmt.Errorf("start process monitor: %w", err)
	}
	s.mon = serverMonitor{m: m, pids: make(map[int32]int), conns: make(map[core.ConnID]int32)}
	if r := procmon.FallbackReason(m); r != "" {
		s.log.Info("process monitor falls back", "monitor", m.Kind(), "reason", r)
	}
	return nil
}

// MonitorKind returns the process monitor in use: "ebpf", "pidfd" or
// "none" (control-socket EOF only).
func (s *Server) MonitorKind() string {
	if s.mon.m == nil {
		return procmon.KindNone
	}
	return s.mon.m.Kind()
}

// monitorEvents returns the monitor's exit events (nil, which never
// delivers, once the server is closed).
func (s *Server) monitorEvents() <-chan procmon.Exit {
	if s.mon.m == nil {
		return nil
	}
	return s.mon.m.Events()
}

// watchPeer starts watching the process behind a connection that completed
// its handshake, with the pidfd the kernel took at connect time
// (SO_PEERPIDFD) when it has one. Runs on the Serve goroutine.
func (s *Server) watchPeer(c *serverConn) {
	pid := c.sc.Cred.PID
	if s.mon.m == nil || pid <= 0 || s.conns[c.id] != c {
		return // no monitor, or the core refused the client and dropped it
	}
	if _, ok := s.mon.conns[c.id]; ok {
		return
	}
	s.mon.conns[c.id] = pid
	s.mon.pids[pid]++
	if s.mon.pids[pid] > 1 || s.unlinger(pid) {
		return // the process is already watched (several connections, or lingering)
	}
	pidfd, err := c.sc.PeerPidfd()
	if err != nil {
		pidfd = nil // the monitor opens its own
	}
	if err := s.mon.m.Watch(pid, pidfd); err != nil {
		s.log.Warn("watch client process", "conn", c.id, "pid", pid, "err", err)
	}
}

// unwatchPeer stops watching a departed connection's process once no
// connection of it is left. Runs on the Serve goroutine.
func (s *Server) unwatchPeer(c *serverConn) {
	pid, ok := s.mon.conns[c.id]
	if !ok {
		return
	}
	delete(s.mon.conns, c.id)
	if s.mon.pids[pid]--; s.mon.pids[pid] <= 0 {
		delete(s.mon.pids, pid)
		if !s.linger(pid) { // server_lifecycle.go
			s.mon.m.Unwatch(pid)
		}
	}
}

// processExited turns a monitor's exit report into the core's
// ProcessExited event (idempotent with the ClientDisconnected that the
// socket's EOF produces). Runs on the Serve goroutine.
func (s *Server) processExited(ex procmon.Exit) {
	if _, ok := s.mon.pids[ex.PID]; !ok && !s.unlinger(ex.PID) {
		return // its connections are already gone, and it was not lingering
	}
	// The monitor has ended the watch: forget it before the core's
	// CloseConn actions come back through dropConn.
	delete(s.mon.pids, ex.PID)
	for id, pid := range s.mon.conns {
		if pid == ex.PID {
			delete(s.mon.conns, id)
		}
	}
	s.log.Info("client process exited", "pid", ex.PID, "seen_by", ex.Source)
	if !ex.At.IsZero() {
		if s.mon.exited == nil {
			s.mon.exited = map[int32]time.Time{}
		}
		s.mon.exited[ex.PID] = ex.At
		defer delete(s.mon.exited, ex.PID)
	}
	s.step(core.ProcessExited{PID: ex.PID})
}

// closeMonitor stops the monitor. Called by Close.
func (s *Server) closeMonitor() error {
	if s.mon.m == nil {
		return nil
	}
	if err := s.mon.m.Close(); err != nil {
		return fmt.Errorf("close process monitor: %w", err)
	}
	return nil
}
