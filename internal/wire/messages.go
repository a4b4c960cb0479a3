package wire

import "github.com/parallax-ipc/parallax"

// A Message is one control message: a pointer to one of the structs in this
// file. Messages are plain values: the zero value of each is encodable when
// its Validate accepts it, they may be copied freely and hold no resources
// (file descriptors travel beside them, see [ExpectedFDs]).
type Message interface {
	// MessageType returns the type written into the envelope.
	MessageType() Type
	// Validate checks field limits; the error wraps [ErrInvalidArgument].
	Validate() error
}

// Overflow policies of a subscriber queue ([CreateSubscriber.Policy],
// [ConnectionAdded.Policy]).
const (
	PolicyDiscardOldest = uint8(parallax.DiscardOldest) // the producer reclaims the oldest entry
	PolicyBlockProducer = uint8(parallax.BlockProducer) // the producer waits for space
)

// Segment kinds ([DataSegDesc.Kind]): the backing of the fd that comes with
// the descriptor.
const (
	KindMemfd    uint8 = 1 // memfd with normal pages
	KindHugetlb  uint8 = 2 // memfd with MFD_HUGETLB
	KindFile     uint8 = 3 // mapped file (persistence, hugetlbfs)
	kindLastKind       = KindFile
)

// Hello opens a session: the first message a client sends. Version and
// MinVersion give the range of protocol versions the client speaks.
type Hello struct {
	Version    uint16
	MinVersion uint16
	PID        int32
	Name       string // process name, for introspection and logs
}

// Welcome answers [Hello]: the negotiated Version, the client's id, the
// domain, and the client's resume token: a secret of [ResumeTokenSize]
// random bytes that only this client is told and that it presents in
// [Resume] after a router restart. No fd comes with it: the client runs
// its publishers and subscribers on the owned segments the router grants
// later ([DataSegmentAdded], [ConnSegmentAdded]).
type Welcome struct {
	Version     uint16
	ClientID    uint16
	RouterPID   int32
	Domain      string
	ResumeToken []byte
}

// Error answers a request that failed. Use [NewError] to build one from a Go
// error and [Error.Err] to turn it back into one.
type Error struct {
	Code    Code
	Message string
}

// Ack answers a request that succeeded and returns nothing.
type Ack struct{}

// Ping asks the peer for a [Pong] (liveness check).
type Ping struct{}

// Pong answers [Ping].
type Pong struct{}

// Shutdown is pushed by the router before it goes away. Existing connections
// keep flowing; the client runtime may reconnect to a new router.
type Shutdown struct {
	Reason string
}

// TypeInfo describes a topic's payload type. Publishers and subscribers of a
// topic must agree on all three fields. Name "" means untyped bytes; Align 0
// means no alignment requirement beyond the chunk's.
type TypeInfo struct {
	Name  string
	Size  uint32
	Align uint32
}

// CreatePublisher asks for a publisher on Topic. History is how many of the
// last samples the publisher keeps for late-joining subscribers.
//
// MaxPayload, MaxLoans and ExpectedSubscribers (since version 3) size the
// publisher's owned data segment (design §1.3): the chunk size of an
// untyped publisher, the loans outstanding at once and the subscribers to
// make room for; 0 means the router's [publishers] defaults.
type CreatePublisher struct {
	Topic               string
	Type                TypeInfo
	History             uint32
	MaxPayload          uint32
	MaxLoans            uint32
	ExpectedSubscribers uint16
	// Kind is the endpoint kind: [EndpointTopic] (pub/sub), or
	// [EndpointRequest] / [EndpointResponse] for the two sides of a
	// request/response service (docs/design/request-response.md).
	Kind uint8
}

// PublisherCreated answers [CreatePublisher]. No fd comes with it: the
// publisher's data segments are pushed before it ([DataSegmentAdded]).
type PublisherCreated struct {
	PubID uint32
}

// CreateSubscriber asks for a subscriber on Topic. QueueCapacity 0 means
// the router's default; History is how many past samples it wants on join.
//
// MaxHeld (since version 3) is the samples the subscriber holds at once per
// connection; 0 means the router's default.
type CreateSubscriber struct {
	Topic         string
	Type          TypeInfo
	QueueCapacity uint32
	History       uint32
	Policy        uint8
	MaxHeld       uint32
	// Kind is the endpoint kind, as [CreatePublisher.Kind]. Pair, only
	// for [EndpointResponse], is the client's own request publisher on
	// the same service; the router sends it in [ConnectionAdded.Pair].
	Kind uint8
	Pair uint32
}

// SubscriberCreated answers [CreateSubscriber]. No fd comes with it: each
// connection brings its own segment ([ConnSegmentAdded]).
type SubscriberCreated struct {
	SubID uint32
}

// ClosePublisher ends a publisher; answered by [Ack].
type ClosePublisher struct {
	PubID uint32
}

// CloseSubscriber ends a subscriber; answered by [Ack].
type CloseSubscriber struct {
	SubID uint32
}

// ReleaseConnection tells the router that this process no longer touches
// the segment of connection ConnID: it sends one for every
// [ConnectionRemoved] it receives, once the endpoints concerned have let
// go. The router drops a removed connection when every surviving side has
// released it (or died); answered by [Ack], also for a connection the
// router has already dropped.
type ReleaseConnection struct {
	ConnID uint32
}

// ConnectionAdded is pushed to both the publisher's and the subscriber's
// process when the router connects them. The connection's rings (a data
// ring of Capacity entries) and wake words are in its own segment
// ([ConnSegmentAdded]), pushed before it.
type ConnectionAdded struct {
	ConnID   uint32
	PubID    uint32
	SubID    uint32
	Capacity uint32
	Policy   uint8
	History  uint32
	// Pair is the subscriber's paired request publisher (a
	// request/response client's response connection), else 0.
	Pair uint32
}

// ConnectionRemoved is pushed when a connection ends (a side closed or
// died). Code says why.
type ConnectionRemoved struct {
	ConnID uint32
	PubID  uint32
	SubID  uint32
	Reason string
	Code   RemovedCode
}

// MessageType implementations.

func (*Hello) MessageType() Type             { return TypeHello }
func (*Welcome) MessageType() Type           { return TypeWelcome }
func (*Error) MessageType() Type             { return TypeError }
func (*Ack) MessageType() Type               { return TypeAck }
func (*Ping) MessageType() Type              { return TypePing }
func (*Pong) MessageType() Type              { return TypePong }
func (*Shutdown) MessageType() Type          { return TypeShutdown }
func (*CreatePublisher) MessageType() Type   { return TypeCreatePublisher }
func (*PublisherCreated) MessageType() Type  { return TypePublisherCreated }
func (*CreateSubscriber) MessageType() Type  { return TypeCreateSubscriber }
func (*SubscriberCreated) MessageType() Type { return TypeSubscriberCreated }
func (*ClosePublisher) MessageType() Type    { return TypeClosePublisher }
func (*CloseSubscriber) MessageType() Type   { return TypeCloseSubscriber }
func (*ReleaseConnection) MessageType() Type { return TypeReleaseConnection }
func (*ConnectionAdded) MessageType() Type   { return TypeConnectionAdded }
func (*ConnectionRemoved) MessageType() Type { return TypeConnectionRemoved }
