package roudi

// Guarding the router and the clients against hostile or broken peers.
//
// # Trust model
//
// The boundary is the uid. A client can write only its own publishers'
// data segments and the connection segments it is an end of, each shared
// with exactly one peer (docs/design/memory-ownership.md §3); the router
// creates, seals and fchmods every segment and never reads memory a client
// can write. Every value read from a peer's memory is validated before use
// by the reader, so garbage yields errors for that connection only.
//
// # Where each decision lives
//
//   - reports (wire.ReportPeer, bad ref or corrupt ring): the report of an
//     end of a connection cuts that connection, unverified; a report by
//     anyone else is refused (core.PeerReported, core.RingReported,
//     guard_owned.go);
//   - the counters (GuardStats) are the server's atomics, bumped on the
//     core's core.Count actions.
//
// Two disconnects stay in the server because they are flow control of one
// socket, not registry decisions: the request rate limit below (a token
// bucket on wall time, kept by the connection's read goroutine so that a
// flood costs the Serve goroutine nothing) and the cut of a client whose
// outgoing queue overflows or stalls (server_outq.go). Both end in a
// core.ClientDisconnected like any other departure.
//
// # Rate limiting
//
// Each control connection has a token bucket (limits.max_requests_per_second
// refilled continuously, limits.request_burst deep), kept by the
// connection's read goroutine, so a flood costs the Serve goroutine nothing.
// A request without a token is answered at once with an error wrapping
// parallax.ErrLimit and not forwarded. Each refusal adds a strike and each
// admitted request forgives one; a client that reaches [floodStrikes] (it
// keeps sending faster than the limit instead of backing off) is
// disconnected and reclaimed. Malformed messages are refused by
// discovery.ServerConn with a protocol error, which also ends the
// connection.

import (
	"fmt"
	"os"
	"sync/atomic"
	"time"

	"github.com/parallax-ipc/parallax/roudi/internal/core"

	"github.com/parallax-ipc/parallax"
	"github.com/parallax-ipc/parallax/internal/wire"
)

const (
	// floodStrikes is the strike count (refused requests minus admitted
	// ones, never below 0) at which a control connection is dropped.
	floodStrikes = 64
)

// ErrFlooding is the error a connection dropped for flooding ends with; it
// wraps parallax.ErrLimit.
var ErrFlooding = fmt.Errorf("control connection kept exceeding its request rate: %w", parallax.ErrLimit)

// errRateLimited answers a request refused by the token bucket.
var errRateLimited = fmt.Errorf("request rate limit exceeded (limits.max_requests_per_second): %w", parallax.ErrLimit)

// connGuard is one control connection's token bucket and strike count. It is owned by the
// connection's read goroutine; the zero value starts with a full bucket.
type connGuard struct {
	started bool
	tokens  float64
	last    time.Time
	strikes int
}

// guardState is the server's counters of hostile-peer handling (atomics:
// GuardStats reads them from any goroutine). The verdicts behind most of
// them are the core's (core.Count actions, countGuard).
type guardState struct {
	rateLimited, floods atomic.Uint64
	refused, reportCuts atomic.Uint64 // peer reports (core guard_owned.go)
	stalled             atomic.Uint64 // cut for not reading (server_outq.go)
}

// admitRequest runs on c's read goroutine for every request after the
// handshake. It reports whether to forward the request (drop == false) and
// whether to end the connection for flooding (stop). A refused request is
// answered with an error wrapping parallax.ErrLimit here, and its fds are
// closed.
func (s *Server) admitRequest(c *serverConn, env wire.Envelope, files []*os.File) (drop, stop bool) {
	g := &c.guard
	now := time.Now()
	rate, burst := float64(s.cfg.Limits.MaxRequestsPerSecond), float64(s.cfg.Limits.RequestBurst)
	if !g.started {
		g.started, g.tokens, g.last = true, burst, now
	} else {
		g.tokens = min(burst, g.tokens+now.Sub(g.last).Seconds()*rate)
		g.last = now
	}
	if g.tokens >= 1 {
		g.tokens--
		if g.strikes > 0 {
			g.strikes-- // every admitted request forgives one refusal
		}
		return false, false
	}
	closeFiles(files)
	s.guard.rateLimited.Add(1)
	g.strikes++
	if g.strikes >= floodStrikes {
		s.guard.floods.Add(1)
		return true, true
	}
	// Queued like every send (server_outq.go), so this goroutine never
	// waits for the client either. A failed send means the connection was
	// cut or closed: the next read ends the loop.
	_ = c.sc.ReplyError(env.ReqID, errRateLimited)
	return true, false
}

// reportPeer handles a wire.ReportPeer on the Serve goroutine: it steps
// the core (core.PeerReported or core.RingReported), which cuts the
// connection when the reporter is one of its ends. The reporter always gets
// an Ack.
func (s *Server) reportPeer(c *serverConn, reqID uint32, m *wire.ReportPeer) {
	// The report of an end cuts its connection; the router reads no client
	// memory (core guard_owned.go).
	if m.Reason == wire.ReportCorruptRing {
		s.step(core.RingReported{Conn: c.id, ReqID: reqID, Connection: core.ConnectionID(m.ConnID), Detail: m.Detail})
	} else {
		s.step(core.PeerReported{Conn: c.id, ReqID: reqID, Connection: core.ConnectionID(m.ConnID), Ref: parallax.ChunkRef(m.Ref), Detail: m.Detail})
	}
}

// countGuard performs a core.Count action.
func (s *Server) countGuard(a core.Count) {
	g := &s.guard
	switch a.Counter {
	case core.CountReportRefused:
		g.refused.Add(1)
	case core.CountReportCut:
		g.reportCuts.Add(1)
	}
}

// GuardStats counts what the router did against hostile or broken peers.
type GuardStats struct {
	RateLimited      uint64 // requests refused by the rate limit
	FloodDisconnects uint64 // connections dropped for flooding
	// RefusedReports counts peer reports (bad ref, corrupt ring) the
	// router refused: their sender is no end of the connection named, or
	// no such connection is live.
	RefusedReports uint64
	// ReportCuts counts connections cut on the report of one of their
	// ends (unverified: the router reads no client memory; nobody is
	// disconnected).
	ReportCuts uint64
	// StalledDisconnects counts connections cut because the client did
	// not read its socket: its outgoing queue overflowed or a write made
	// no progress for the write timeout (server_outq.go).
	StalledDisconnects uint64
}

// GuardStats returns the router's counters of hostile-peer handling. It is
// safe to call from any goroutine.
func (s *Server) GuardStats() GuardStats {
	g := &s.guard
	return GuardStats{RateLimited: g.rateLimited.Load(), FloodDisconnects: g.floods.Load(),
		RefusedReports: g.refused.Load(), ReportCuts: g.reportCuts.Load(), StalledDisconnects: g.stalled.Load()}
}
