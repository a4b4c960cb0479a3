package roudi

// Guarding the router and the clients against hostile or broken peers.
//
// # Trust model
//
// Every client maps the management segment read-write: pool bitmaps, chunk
// headers (ctl words), rings and hold tables. A client with that mapping can
// corrupt any of it, and nothing the router does can prevent that, nor tell
// afterwards which process wrote a given word. The goal is containment, not
// prevention:
//
//   - Nobody crashes. Every value read from shared memory is validated
//     before use (mempool checks pool, slot, generation and reference count
//     against counts cached locally; rings bound their positions), so
//     garbage yields errors, never a panic or an out-of-range access.
//   - No chunk is freed twice by honest code: Release and AddRef are CAS
//     loops that require the ref's generation and a positive count, so a
//     double release, a stale ref or a forged one fails and changes nothing.
//     (A client that writes ctl words directly can still lower a count it
//     does not own, or make a held chunk look free; that is the limit of
//     what shared-memory accounting can enforce.)
//   - The router restores consistency when the domain is idle: the sweep
//     run after the last client leaves audits every pool, frees what is still
//     held and repairs corrupt ctl words and bitmap bits
//     (mempool.Pool.Sweep, Pool.Repair).
//   - An offender is disconnected and reclaimed: a control connection that
//     floods the router is rate-limited and then dropped; a publisher whose
//     ring carries garbage is dropped once its consumer reported it
//     [core.ReportThreshold] times; a ring whose indices are impossible has
//     its connection cut at once and its offender, when known, dropped
//     (server_ringcheck.go).
//
// # Where each decision lives
//
// The server reads shared memory and moves bytes and fds; the router core
// (roudi/internal/core, covered by its datadriven scripts) decides:
//
//   - bad-ref reports: the server checks the ref against its pools and
//     looks for the value in the ring (reportPeer, ringHolds); the core
//     checks the reporter, counts, forgets the counts of processes gone
//     and disconnects (core.PeerReported, guard.go);
//   - corrupt-ring reports: the server checks the ring and reads its index
//     words (reportCorruptRing); the core checks the reporter, cuts the
//     connection and blames an end (core.RingReported, core.Blame);
//   - the orphan drain after a restart: the core names the arena ranges
//     nobody accounts for at the resume deadline (core.DrainOrphans); the
//     server walks those ranges for rings and drains them;
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
// # Reports
//
// A subscriber that pops a ref failing validation sends a wire.ReportPeer
// naming the connection. The router acts on it only if it verifies what is
// cheap to verify, so that a report cannot be used to kill an arbitrary
// peer:
//
//   - the reporter is the consumer of that connection (a client can only
//     accuse the publishers that feed it) — the core's registry says;
//   - the reported value fails validation in the router's own view of the
//     pools now (an honest in-flight ref is held by its ring entry, so it is
//     valid until the consumer releases it);
//   - the value is present in one of the connection ring's slots (slots keep
//     their last value after a pop), so the reporter did not invent it
//     without writing it into its own ring first — which any client with the
//     mapping can do anyway, so this grants no power it did not have.
//
// After [core.ReportThreshold] verified reports against a publisher's
// process, the router closes that process's control connection and
// reclaims it like a dead one (its connections are removed, its rings
// drained, what its hold table lists released). The process itself keeps
// its mappings: the router cannot revoke them, so a hostile process that
// stays alive can keep scribbling on shared memory; honest peers keep
// validating.
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
	rateLimited, floods, verified, refused, kicked atomic.Uint64
	corruptRings, corruptKicked                    atomic.Uint64 // server_ringcheck.go
	stalled                                        atomic.Uint64 // cut for not reading (server_outq.go)
	reportCuts                                     atomic.Uint64 // owned model: cut on an end's report
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
	case core.CountReportVerified:
		g.verified.Add(1)
	case core.CountReportDisconnect:
		g.kicked.Add(1)
	case core.CountCorruptRing:
		g.corruptRings.Add(1)
	case core.CountCorruptRingDisconnect:
		g.corruptKicked.Add(1)
	case core.CountReportCut:
		g.reportCuts.Add(1)
	}
}

// GuardStats counts what the router did against hostile or broken peers.
type GuardStats struct {
	RateLimited       uint64 // requests refused by the rate limit
	FloodDisconnects  uint64 // connections dropped for flooding
	VerifiedReports   uint64 // bad-ref reports that passed verification
	RefusedReports    uint64 // reports that did not
	ReportDisconnects uint64 // processes dropped for corrupting rings
	// CorruptRings counts rings found with impossible indices: reported
	// and verified (each such connection is cut), or met while draining.
	CorruptRings uint64
	// CorruptRingDisconnects counts processes dropped as the offender of
	// a corrupt ring's indices (the router core's blame rules).
	CorruptRingDisconnects uint64
	// ReportCuts counts connections cut on the report of one of their
	// ends (owned memory model: unverified, nobody disconnected).
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
	return GuardStats{RateLimited: g.rateLimited.Load(), FloodDisconnects: g.floods.Load(), VerifiedReports: g.verified.Load(),
		RefusedReports: g.refused.Load(), ReportDisconnects: g.kicked.Load(), StalledDisconnects: g.stalled.Load(),
		CorruptRings: g.corruptRings.Load(), CorruptRingDisconnects: g.corruptKicked.Load(), ReportCuts: g.reportCuts.Load()}
}
