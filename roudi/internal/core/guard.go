package core

import (
	"fmt"
	"log/slog"

	"github.com/parallax-ipc/parallax"
)

// Guard verdicts: what the router does about a client's report that a peer
// corrupted a ring.
//
// Every client maps the management segment read-write, so the router can
// neither prevent corruption nor prove afterwards who wrote a word. A
// report is evidence, not a command: the server checks what needs shared
// memory (is the reported ref invalid in the router's view of the pools,
// is the value in the connection's ring, are the ring's indices
// impossible) and steps [PeerReported] or [RingReported] with what it
// found; the core decides, from its registry, whether the report counts
// and whom to disconnect. The reporter always gets a [Reply] with [Noted].
//
// Not decided here: the per-connection request rate limit (a token bucket
// kept by each connection's read goroutine on wall time, so a flood costs
// the server's loop nothing) and the disconnect of a client whose outgoing
// queue overflows; both are flow control of one socket, not registry
// decisions, and stay in the server.

// ReportThreshold is the number of verified bad-ref reports against a
// publisher's process after which the router disconnects it.
const ReportThreshold = 3

// PeerReported is a consumer's report (wire.ReportPeer, reason bad ref)
// that a ref it popped from Connection failed validation, with what the
// server found in shared memory. The core acts on it only if the reporter
// (the client on Conn) is the connection's consumer, the ref is invalid
// and the value is in the ring: so a report cannot kill an arbitrary peer.
// After [ReportThreshold] verified reports against a publisher's process,
// that process is disconnected and reclaimed like a dead one. In the owned
// memory model the report of either end cuts the connection instead,
// unverified (RefInvalid and InRing are ignored; see guard_owned.go).
type PeerReported struct {
	Conn       ConnID // the reporter's control connection
	ReqID      uint32
	Connection ConnectionID
	Ref        parallax.ChunkRef
	Detail     string // the reporter's description
	// RefInvalid: the ref fails validation in the router's view of the
	// pools now (an honest in-flight ref is held by its ring entry, so it
	// is valid until the consumer releases it).
	RefInvalid bool
	// InRing: the value is present in one of the connection ring's slots
	// (slots keep their last value after a pop). The server need not look
	// when RefInvalid is false: the verdict does not depend on it then.
	InRing bool
}

// RingReported is a report (wire.ReportPeer, reason corrupt ring) from an
// end of Connection that its ring's indices are impossible, with the
// ring's state as the server read it. The core refuses it unless the
// reporter is an end of the connection and the server found the ring
// corrupt too; then it cuts the connection (as [CutConnection]) and
// disconnects the offender when [Blame] can tell who that is. In the owned
// memory model the report of an end cuts the connection, unverified (Ring
// is ignored; see guard_owned.go).
type RingReported struct {
	Conn       ConnID // the reporter's control connection
	ReqID      uint32
	Connection ConnectionID
	Detail     string // the reporter's description
	Ring       RingState
}

// RingState is what the server read of a ring's header.
type RingState struct {
	// Err is nil when the ring attached and its indices are possible;
	// otherwise it says what is wrong (the attach error, or the check's
	// ringbuf.ErrCorruptRing).
	Err error
	// Attached is false when the header did not even attach (its magic
	// or capacity scribbled on): corrupt, by whom is unknown.
	Attached bool
	// The index words: the head word's position and pop count halves,
	// the whole tail word and the low 32 bits of the dropped count.
	HeadPos, HeadPops uint32
	Tail              uint64
	Dropped           uint32
	// Policy is the ring header's queue-full policy. For a reported ring
	// the core uses its own record instead: the router formatted the ring
	// with it, and a peer can rewrite the header's copy.
	Policy Policy
}

func (PeerReported) isEvent() {}
func (RingReported) isEvent() {}

// Noted answers a report ([PeerReported], [RingReported]) whatever its
// verdict; the server sends it as an Ack.
type Noted struct{}

func (Noted) isResult() {}

// A GuardCounter names one of the server's counters of hostile-peer
// handling (roudi.GuardStats).
type GuardCounter uint8

// Guard counters.
const (
	// CountReportRefused: a report that did not pass verification.
	CountReportRefused GuardCounter = iota + 1
	// CountReportVerified: a bad-ref report that passed verification.
	CountReportVerified
	// CountReportDisconnect: a process disconnected for corrupting rings
	// ([ReportThreshold] verified reports).
	CountReportDisconnect
	// CountCorruptRing: a reported ring found corrupt (its connection is
	// cut).
	CountCorruptRing
	// CountCorruptRingDisconnect: the offender of a corrupt ring's
	// indices disconnected.
	CountCorruptRingDisconnect
	// CountReportCut: a connection cut on its end's report (owned model:
	// the router does not read the connection's memory to verify it).
	CountReportCut
)

func (g GuardCounter) String() string {
	switch g {
	case CountReportRefused:
		return "report-refused"
	case CountReportVerified:
		return "report-verified"
	case CountReportDisconnect:
		return "report-disconnect"
	case CountCorruptRing:
		return "corrupt-ring"
	case CountCorruptRingDisconnect:
		return "corrupt-ring-disconnect"
	case CountReportCut:
		return "report-cut"
	}
	return fmt.Sprintf("counter(%d)", uint8(g))
}

// Count asks the server to add one to a guard counter.
type Count struct{ Counter GuardCounter }

func (Count) isAction() {}

func (a Count) String() string { return "count " + a.Counter.String() }

// peerReported decides a bad-ref report (see [PeerReported]).
func (r *Router) peerReported(ev PeerReported) {
	r.emit(Reply{Conn: ev.Conn, ReqID: ev.ReqID, Result: Noted{}})
	reporter := r.conns[ev.Conn]
	if r.owned() {
		r.ownedReport(reporter, ev.Conn, ev.Connection, "bad ref", ev.Detail) // guard_owned.go
		return
	}
	refuse := func(why string) {
		r.emit(Count{Counter: CountReportRefused})
		r.log(slog.LevelWarn, "peer report not verified", slog.Uint64("conn", uint64(ev.Conn)), slog.Int("client", int(clientID(reporter))),
			slog.Int("connection", int(ev.Connection)), slog.String("ref", ev.Ref.String()), slog.String("why", why))
	}
	l := r.links[ev.Connection]
	switch {
	case l == nil:
		refuse("no such connection")
		return
	case reporter == nil || l.sub.client != reporter:
		refuse("reporter is not the connection's consumer")
		return
	case !ev.RefInvalid:
		refuse("the reported ref is valid")
		return
	case !ev.InRing:
		refuse("the reported value is not in the connection's ring")
		return
	}
	r.emit(Count{Counter: CountReportVerified})
	pub := l.pub.client
	if r.reports == nil {
		r.reports = make(map[ClientID]int)
	}
	r.reports[pub.id]++
	n := r.reports[pub.id]
	r.log(slog.LevelWarn, "bad ref in a ring reported", slog.Int("connection", int(l.id)), slog.String("topic", l.pub.topic.name),
		slog.Int("publisher_client", int(pub.id)), slog.Int("reporter_client", int(reporter.id)), slog.String("ref", ev.Ref.String()),
		slog.String("detail", ev.Detail), slog.Int("reports", n))
	if n < ReportThreshold {
		return
	}
	r.emit(Count{Counter: CountReportDisconnect})
	r.log(slog.LevelWarn, "disconnecting client for corrupting a ring", slog.Int("client", int(pub.id)), slog.Int("pid", int(pub.pid)),
		slog.String("name", pub.name), slog.Int("reports", n))
	r.removeClient(pub, "disconnected for corrupting a ring", true, endCorrupt) // forgets its reports
}

// clientID returns c's id, 0 for nil.
func clientID(c *client) ClientID {
	if c == nil {
		return 0
	}
	return c.id
}

// ringReported decides a corrupt-ring report (see [RingReported]).
func (r *Router) ringReported(ev RingReported) {
	r.emit(Reply{Conn: ev.Conn, ReqID: ev.ReqID, Result: Noted{}})
	reporter := r.conns[ev.Conn]
	if r.owned() {
		r.ownedReport(reporter, ev.Conn, ev.Connection, "corrupt ring", ev.Detail) // guard_owned.go
		return
	}
	refuse := func(why string) {
		r.emit(Count{Counter: CountReportRefused})
		r.log(slog.LevelWarn, "corrupt-ring report not verified", slog.Uint64("conn", uint64(ev.Conn)), slog.Int("client", int(clientID(reporter))),
			slog.Int("connection", int(ev.Connection)), slog.String("why", why))
	}
	l := r.links[ev.Connection]
	switch {
	case l == nil:
		refuse("no such connection")
		return
	case reporter == nil || (l.sub.client != reporter && l.pub.client != reporter):
		refuse("reporter is not an end of the connection")
		return
	case ev.Ring.Err == nil:
		refuse("the router finds the ring's indices possible")
		return
	}
	offender := EndUnknown
	if ev.Ring.Attached { // a header that no longer attaches: scribbled on, by whom is unknown
		st := ev.Ring
		st.Policy = l.sub.policy
		offender = Blame(st)
	}
	r.emit(Count{Counter: CountCorruptRing})
	r.log(slog.LevelWarn, "corrupt ring: cutting its connection", slog.Int("connection", int(l.id)), slog.String("topic", l.pub.topic.name),
		slog.Int("publisher_client", int(l.pub.client.id)), slog.Int("subscriber_client", int(l.sub.client.id)),
		slog.Int("reporter_client", int(reporter.id)), slog.String("offender", offender.String()),
		slog.String("err", ev.Ring.Err.Error()), slog.String("detail", ev.Detail))
	var blamed *client
	switch offender {
	case EndProducer:
		blamed = l.pub.client
	case EndConsumer:
		blamed = l.sub.client
	}
	r.cut(CutConnection{Connection: l.id, Reason: "ring corrupt: " + ev.Ring.Err.Error()})
	if blamed == nil {
		return
	}
	r.emit(Count{Counter: CountCorruptRingDisconnect})
	r.log(slog.LevelWarn, "disconnecting client for corrupting a ring's indices", slog.Int("client", int(blamed.id)),
		slog.Int("pid", int(blamed.pid)), slog.String("name", blamed.name), slog.String("end", offender.String()))
	r.removeClient(blamed, "disconnected for corrupting a ring's indices", true, endCorrupt)
}
