package wire

import "fmt"

// Version is the control protocol version this build speaks. Bump it
// whenever any encoding changes (the golden tests enforce this).
//
// Version 2 added Welcome.ResumeToken and Resume.Token (a client resumes
// after a router restart only with the token its Welcome gave it).
//
// Version 3 added Welcome.Model, CreatePublisher.MaxPayload, MaxLoans and
// ExpectedSubscribers, and CreateSubscriber.MaxHeld (the owned memory
// model of docs/design/memory-ownership.md, landing step 7).
//
// Version 4 is the owned model alone (step 14 deleted the shared one): the
// shared model's messages are gone (SegmentGrant, GrowPool, PoolGranted,
// GetSegments, PoolRetired; their types stay reserved), and so are its
// fields: Welcome.{Mgmt,Pools,Model}, PublisherCreated.Segments,
// SubscriberCreated.{NotifierOffset,Segments}, the ring and notifier
// offsets of ConnectionAdded, ResumeSubscriber and ResumeConnection,
// Resume.MgmtInode and RouterInfo.{Reclaimed,ArenaUsed,ArenaSize}.
// ConnectionRemoved always carries its Code and Resume its owned lists
// (no shorter encodings for the shared model).
//
// Version 5 added ResumePubMemory.MaxPayload: a restarted router knows a
// resumed publisher that declared no payload size as undeclared, so it
// may still ask for undersized classes (docs/design/memory-ownership.md
// §8.23).
const Version uint16 = 5

// MinVersion is the oldest protocol version this build still accepts.
// Each version's messages decode only as that version's (the codec is
// canonical, array-encoded, and every version changed the field lists of
// messages every session sends: Welcome, Resume, CreatePublisher, ...), so
// a version 3 peer, which may run the removed shared model, is refused
// with parallax.ErrProtocolVersion at the handshake rather than misread
// (a version 4 client's Resume would not decode: its OwnedPubs entries
// lack MaxPayload).
const MinVersion uint16 = 5

// MaxMessageSize is the largest encoded message, in bytes. One message is
// one unixpacket datagram.
const MaxMessageSize = 64 << 10

// A Type enumerates the control messages. Its numeric values are part of the
// protocol.
type Type uint16

// Message types. Ranges: 1-15 session, 16-31 publish/subscribe requests and
// replies, 32-47 pushes and owned segment requests (owned.go,
// owned_grow.go, lifecycle.go), 48-55 peer and component reports
// (report.go, counters.go, memory.go), 56-63 resuming after a router
// restart (resume.go), 64-127 reserved for introspection requests.
//
// Reserved, never to be reused: 34 (SegmentGrant) and 40-43 (GrowPool,
// PoolGranted, GetSegments, PoolRetired), the removed shared memory
// model's messages (protocol version 3 and older), and 72-73 (ListPools,
// PoolList), its router-wide pools' introspection (removed in version 4,
// where the router answered it with an empty list). A peer that sends one
// gets a protocol error naming it (removedTypes).
const (
	TypeHello    Type = 1
	TypeWelcome  Type = 2
	TypeError    Type = 3
	TypeAck      Type = 4
	TypePing     Type = 5
	TypePong     Type = 6
	TypeShutdown Type = 7

	TypeCreatePublisher   Type = 16
	TypePublisherCreated  Type = 17
	TypeCreateSubscriber  Type = 18
	TypeSubscriberCreated Type = 19
	TypeClosePublisher    Type = 20
	TypeCloseSubscriber   Type = 21
	TypeReleaseConnection Type = 22

	TypeConnectionAdded   Type = 32
	TypeConnectionRemoved Type = 33

	// TypeIntrospectFirst..TypeIntrospectLast are reserved for
	// introspection requests and replies (topics, clients, pool usage);
	// the ones in use are listed in introspect.go and counters.go.
	TypeIntrospectFirst Type = 64
	TypeIntrospectLast  Type = 127
)

// removedTypes names the reserved types of removed messages, for the
// error a peer that still sends one gets from [Decode].
var removedTypes = map[Type]string{
	34: "SegmentGrant",
	40: "GrowPool", 41: "PoolGranted", 42: "GetSegments", 43: "PoolRetired",
	72: "ListPools", 73: "PoolList",
}

var typeNames = map[Type]string{
	TypeHello:             "Hello",
	TypeWelcome:           "Welcome",
	TypeError:             "Error",
	TypeAck:               "Ack",
	TypePing:              "Ping",
	TypePong:              "Pong",
	TypeShutdown:          "Shutdown",
	TypeCreatePublisher:   "CreatePublisher",
	TypePublisherCreated:  "PublisherCreated",
	TypeCreateSubscriber:  "CreateSubscriber",
	TypeSubscriberCreated: "SubscriberCreated",
	TypeClosePublisher:    "ClosePublisher",
	TypeCloseSubscriber:   "CloseSubscriber",
	TypeReleaseConnection: "ReleaseConnection",
	TypeConnectionAdded:   "ConnectionAdded",
	TypeConnectionRemoved: "ConnectionRemoved",
}

// String returns the message name, or "Type(n)" for an unknown type.
func (t Type) String() string {
	if s, ok := typeNames[t]; ok {
		return s
	}
	return fmt.Sprintf("Type(%d)", uint16(t))
}

// Known reports whether t names a message this build can decode.
func (t Type) Known() bool {
	_, ok := typeNames[t]
	return ok
}

// IsPush reports whether t is a router-initiated message, sent with request
// id 0 and answered by nobody. [DataSegmentAdded] is also a reply (to
// [GrowData] and [GetDataSegment]), then with the request's id.
func (t Type) IsPush() bool {
	switch t {
	case TypeShutdown, TypeConnectionAdded, TypeConnectionRemoved,
		TypeDataSegmentAdded, TypeConnSegmentAdded, TypeConnectionClosing:
		return true
	case TypeDataSegmentRetired:
		return true
	}
	return isWatchPush(t) // watch.go
}

// ReplyType returns the message type that answers a request of type t (an
// [Error] may always answer instead), and false if t is not a request.
func ReplyType(t Type) (Type, bool) {
	switch t {
	case TypeHello:
		return TypeWelcome, true
	case TypePing:
		return TypePong, true
	case TypeCreatePublisher:
		return TypePublisherCreated, true
	case TypeCreateSubscriber:
		return TypeSubscriberCreated, true
	case TypeClosePublisher, TypeCloseSubscriber, TypeReleaseConnection, TypeWatchServices, TypeUnwatchServices:
		return TypeAck, true
	}
	if rt, ok := reportReplyType(t); ok {
		return rt, true
	}
	if rt, ok := countersReplyType(t); ok {
		return rt, true
	}
	if rt, ok := memoryReplyType(t); ok {
		return rt, true
	}
	if rt, ok := resumeReplyType(t); ok {
		return rt, true
	}
	if rt, ok := ownedGrowReplyType(t); ok {
		return rt, true
	}
	return introspectReplyType(t)
}

// New returns a pointer to a zero message of type t, or nil if t is
// unknown.
func New(t Type) Message {
	switch t {
	case TypeHello:
		return new(Hello)
	case TypeWelcome:
		return new(Welcome)
	case TypeError:
		return new(Error)
	case TypeAck:
		return new(Ack)
	case TypePing:
		return new(Ping)
	case TypePong:
		return new(Pong)
	case TypeShutdown:
		return new(Shutdown)
	case TypeCreatePublisher:
		return new(CreatePublisher)
	case TypePublisherCreated:
		return new(PublisherCreated)
	case TypeCreateSubscriber:
		return new(CreateSubscriber)
	case TypeSubscriberCreated:
		return new(SubscriberCreated)
	case TypeClosePublisher:
		return new(ClosePublisher)
	case TypeCloseSubscriber:
		return new(CloseSubscriber)
	case TypeReleaseConnection:
		return new(ReleaseConnection)
	case TypeConnectionAdded:
		return new(ConnectionAdded)
	case TypeConnectionRemoved:
		return new(ConnectionRemoved)
	}
	if m := newReport(t); m != nil {
		return m
	}
	if m := newCounters(t); m != nil {
		return m
	}
	if m := newMemory(t); m != nil {
		return m
	}
	if m := newResume(t); m != nil {
		return m
	}
	if t == TypeConnectionClosing {
		return new(ConnectionClosing)
	}
	if m := newOwned(t); m != nil {
		return m
	}
	if m := newOwnedGrow(t); m != nil {
		return m
	}
	if m := newWatch(t); m != nil {
		return m
	}
	return newIntrospect(t)
}

// ExpectedFDs returns how many file descriptors must accompany m, in the
// order m lists its segments: one for a [DataSegmentAdded] or
// [ConnSegmentAdded], [Resume.ResumeFds] for a Resume, none for the rest.
func ExpectedFDs(m Message) int {
	switch m := m.(type) {
	case *DataSegmentAdded, *ConnSegmentAdded:
		return 1
	case *Resume:
		return m.ResumeFds()
	}
	return 0
}
