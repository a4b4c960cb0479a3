package core

import (
	"fmt"
	"log/slog"
	"strings"

	"github.com/parallax-ipc/parallax"
)

// Identifiers used by the core. All are plain values chosen by the core,
// except ConnID, which the server assigns to each accepted control
// connection.
type (
	// ConnID names one control connection (one client runtime's socket).
	ConnID uint64
	// ClientID names a registered client process; 0 is never assigned.
	// It is the owner tag in shared-memory accounting lists.
	ClientID uint16
	// PubID names a publisher; 0 is never assigned.
	PubID uint32
	// SubID names a subscriber; 0 is never assigned.
	SubID uint32
	// ConnectionID names a publisher–subscriber connection (one ring);
	// 0 is never assigned.
	ConnectionID uint32
)

func (c ConnID) String() string { return fmt.Sprintf("c%d", uint64(c)) }

// TypeInfo describes a topic's payload type. Two endpoints are compatible
// when all three fields are equal.
type TypeInfo struct {
	Name  string
	Size  uint32
	Align uint32
}

func (t TypeInfo) String() string { return fmt.Sprintf("%s/%d/%d", t.Name, t.Size, t.Align) }

// Policy is a connection's queue-full policy, with the values of the
// public [parallax.Policy] (and of the wire). The server maps it onto the
// ring package's policy (roudi/policy.go).
type Policy uint8

// Queue-full policies.
const (
	// DiscardOldest lets the producer drop the oldest queued entry.
	DiscardOldest = Policy(parallax.DiscardOldest)
	// BlockProducer makes the producer wait for space.
	BlockProducer = Policy(parallax.BlockProducer)
)

func (p Policy) String() string {
	switch p {
	case DiscardOldest:
		return "discard-oldest"
	case BlockProducer:
		return "block-producer"
	}
	return fmt.Sprintf("policy(%d)", uint8(p))
}

// ---- Events ----

// An Event is an input to [Router.Step]: one of [ConnAccepted],
// [ClientConnected], [ClientRequest], [ClientDisconnected],
// [ProcessExited] or [Tick].
type Event interface{ isEvent() }

// ConnAccepted reports a freshly accepted control connection that has not
// completed its handshake yet. It is optional: the core closes connections
// that stay in this state longer than the hello timeout.
type ConnAccepted struct{ Conn ConnID }

// ClientConnected reports a completed handshake. PID, UID and GID come
// from the kernel (SO_PEERCRED), Name from the client. The core answers
// with a [Reply] whose ReqID is 0 and whose Result is [Welcome].
type ClientConnected struct {
	Conn     ConnID
	PID      int32
	UID, GID uint32
	Name     string
}

// ClientRequest carries one request of a registered client. The core
// answers it with exactly one [Reply] carrying the same ReqID.
type ClientRequest struct {
	Conn  ConnID
	ReqID uint32
	Req   Request
}

// ClientDisconnected reports that a control connection reached EOF or
// failed. For a registered client it means the client is gone.
type ClientDisconnected struct{ Conn ConnID }

// ProcessExited reports that a process died (eBPF or pidfd). Every client
// with that PID is gone; repeated or late reports are ignored.
type ProcessExited struct{ PID int32 }

// Tick advances the core's clock by N ticks (1 when N is 0) and does the
// timed work then due. The server decides how long a tick is, and need not
// step every tick: [Router.NextTick] says when the next timed work is due.
type Tick struct{ N uint64 }

func (ConnAccepted) isEvent()       {}
func (ClientConnected) isEvent()    {}
func (ClientRequest) isEvent()      {}
func (ClientDisconnected) isEvent() {}
func (ProcessExited) isEvent()      {}
func (Tick) isEvent()               {}

// ---- Requests and results ----

// A Request is the payload of a [ClientRequest]: one of [CreatePublisher],
// [CreateSubscriber], [ClosePublisher] or [CloseSubscriber].
type Request interface{ isRequest() }

// CreatePublisher asks for a publisher on Topic. History is the number of
// recent samples it keeps for late joiners.
type CreatePublisher struct {
	Topic   string
	Type    TypeInfo
	History int
	// Owned model sizing (design §1.3); 0 means the default. MaxPayload
	// is the chunk size of an untyped publisher (Type.Size 0).
	MaxPayload          uint32
	MaxLoans            int
	ExpectedSubscribers int
	// Kind is the endpoint kind (request/response services, kind.go).
	Kind EndpointKind
}

// CreateSubscriber asks for a subscriber on Topic. QueueCapacity 0 means
// the configured default; other values are rounded up to a power of two.
// History is how many of a publisher's kept samples it wants on joining.
type CreateSubscriber struct {
	Topic         string
	Type          TypeInfo
	QueueCapacity int
	History       int
	Policy        Policy
	// MaxHeld is the samples held at once per connection in the owned
	// model; 0 means the default.
	MaxHeld int
	// Kind is the endpoint kind; Pair, for KindResponse only, is the
	// client's own request publisher on the same service (kind.go).
	Kind EndpointKind
	Pair PubID
}

// ClosePublisher closes one of the client's publishers.
type ClosePublisher struct{ Pub PubID }

// CloseSubscriber closes one of the client's subscribers.
type CloseSubscriber struct{ Sub SubID }

// ReleaseConnection says that the client let go of a removed connection's
// ring (wire.ReleaseConnection); answered by [Closed].
type ReleaseConnection struct{ Connection ConnectionID }

func (CreatePublisher) isRequest()   {}
func (CreateSubscriber) isRequest()  {}
func (ClosePublisher) isRequest()    {}
func (CloseSubscriber) isRequest()   {}
func (ReleaseConnection) isRequest() {}

// A Result is the successful outcome in a [Reply]: one of [Welcome],
// [PublisherCreated], [SubscriberCreated] or [Closed].
type Result interface{ isResult() }

// Welcome answers [ClientConnected] with the client's ID.
type Welcome struct {
	Client ClientID
	// Token is the client's resume token, sent to it alone: it proves
	// its identity to a restarted router (core_identity.go).
	Token ResumeToken
	// Identity is what the server keeps where it survives the router
	// (never in memory clients can write): the client's pid and uid and
	// the SHA-256 of its token.
	Identity ClientIdentity
}

// PublisherCreated answers [CreatePublisher]. The publisher's connections
// follow as [ConnectionAdded] actions.
type PublisherCreated struct {
	Pub     PubID
	History int
}

// SubscriberCreated answers [CreateSubscriber] with the subscriber's id
// and its queue capacity (rounded up to a power of two).
type SubscriberCreated struct {
	Sub      SubID
	Capacity int
}

// Closed answers [ClosePublisher], [CloseSubscriber] and [ReleaseConnection].
type Closed struct{}

func (Welcome) isResult()           {}
func (PublisherCreated) isResult()  {}
func (SubscriberCreated) isResult() {}
func (Closed) isResult()            {}

// ---- Actions ----

// An Action is an output of [Router.Ready]. The server performs actions in
// order: a connection's segment exists before the [ConnectionAdded] that
// names it goes out (conn_state.go).
type Action interface {
	isAction()
	String() string
}

// Reply answers a request on Conn. Exactly one of Result and Err is set;
// Err wraps a parallax sentinel (ErrIncompatibleType, ErrLimit,
// ErrPermissionDenied, ErrProtocol, ...).
type Reply struct {
	Conn   ConnID
	ReqID  uint32
	Result Result
	Err    error
}

// ConnectionAdded tells the client on Conn about a new publisher–subscriber
// connection. It goes to the subscriber's client first, then the
// publisher's, so the consumer is attached before the producer pushes.
// When one client owns both ends it is sent once; the client tells the
// sides apart by the Pub and Sub IDs it owns.
type ConnectionAdded struct {
	Conn       ConnID // who to tell
	Connection ConnectionID
	Pub        PubID
	Sub        SubID
	Capacity   int
	Policy     Policy
	History    int   // samples of history the publisher should replay
	Pair       PubID // the subscriber's paired request publisher, or 0
}

// ConnectionRemoved tells a surviving client on Conn that a connection is
// gone; Code says why (death.go).
type ConnectionRemoved struct {
	Conn       ConnID
	Connection ConnectionID
	Pub        PubID
	Sub        SubID
	Reason     string
	Code       RemovedCode
}

// ReclaimClient tells the server that client Client (process PID) is
// gone: it forgets the client's identity and per-client state. The
// client's memory needs no walk: what it owned is its publishers' data
// segments, whose connections were removed before this action.
type ReclaimClient struct {
	Client ClientID
	PID    int32
}

// CloseConn asks the server to close a control connection.
type CloseConn struct {
	Conn   ConnID
	Reason string
}

// Log is a log record for the server's logger.
type Log struct {
	Level slog.Level
	Msg   string
	Attrs []slog.Attr
}

func (Reply) isAction()             {}
func (ConnectionAdded) isAction()   {}
func (ConnectionRemoved) isAction() {}
func (ReclaimClient) isAction()     {}
func (CloseConn) isAction()         {}
func (Log) isAction()               {}

func (a Reply) String() string {
	if a.Err != nil {
		return fmt.Sprintf("reply %v req=%d error: %v", a.Conn, a.ReqID, a.Err)
	}
	var r string
	switch v := a.Result.(type) {
	case Welcome:
		r = fmt.Sprintf("welcome client=%d", v.Client)
	case PublisherCreated:
		r = fmt.Sprintf("publisher-created pub=%d history=%d", v.Pub, v.History)
	case SubscriberCreated:
		r = fmt.Sprintf("subscriber-created sub=%d cap=%d", v.Sub, v.Capacity)
	case Closed:
		r = "closed"
	case Resumed:
		r = fmt.Sprintf("resumed client=%d", v.Client)
	case Noted:
		r = "noted"
	case fmt.Stringer:
		r = v.String()
	default:
		r = fmt.Sprintf("%#v", v)
	}
	return fmt.Sprintf("reply %v req=%d %s", a.Conn, a.ReqID, r)
}

func (a ConnectionAdded) String() string {
	return fmt.Sprintf("conn-added %v conn=%d pub=%d sub=%d cap=%d policy=%v history=%d",
		a.Conn, a.Connection, a.Pub, a.Sub, a.Capacity, a.Policy, a.History)
}

func (a ConnectionRemoved) String() string {
	s := fmt.Sprintf("conn-removed %v conn=%d pub=%d sub=%d reason=%q", a.Conn, a.Connection, a.Pub, a.Sub, a.Reason)
	if a.Code != RemovedUnspecified {
		s += " code=" + a.Code.String()
	}
	return s
}

func (a ReclaimClient) String() string {
	return fmt.Sprintf("reclaim client=%d pid=%d", a.Client, a.PID)
}

func (a CloseConn) String() string { return fmt.Sprintf("close-conn %v reason=%q", a.Conn, a.Reason) }

func (a Log) String() string {
	var b strings.Builder
	fmt.Fprintf(&b, "log %s %q", strings.ToLower(a.Level.String()), a.Msg)
	for _, at := range a.Attrs {
		fmt.Fprintf(&b, " %s=%v", at.Key, at.Value)
	}
	return b.String()
}
