package wire

import "fmt"

// Connection life cycle (design
// docs/design/memory-ownership.md §4.1): why a connection was removed
// ([ConnectionRemoved.Code]) and the push that tells a publisher its
// subscriber closed ([ConnectionClosing]).

// TypeConnectionClosing is a push to a publisher's process: a subscriber
// of one of its connections closed (or lost its control connection).
const TypeConnectionClosing Type = 35

// A RemovedCode tells why a connection was removed: what happened to the
// peer of the side told.
type RemovedCode uint8

// Removal codes of [ConnectionRemoved]. Their values are part of the wire
// format.
const (
	// RemovedUnspecified: a side closed or died, no more is known.
	RemovedUnspecified RemovedCode = 0
	// RemovedClosed: the subscriber closed and released the connection
	// (the end of the closing state). The publisher reclaims every chunk
	// still delivered on it.
	RemovedClosed RemovedCode = 1
	// RemovedSubscriberGone: the subscriber's process died (confirmed by
	// the router's process monitor). The publisher reclaims every chunk
	// still delivered on it.
	RemovedSubscriberGone RemovedCode = 2
	// RemovedPublisherGone: the publisher closed or its process died. The
	// subscriber keeps taking what is queued, then releases the connection
	// once it holds nothing of the publisher's any more.
	RemovedPublisherGone RemovedCode = 3
	// RemovedCorrupt: the router cut the connection (a corrupt ring, a bad
	// reference or return reported, a client disconnected for corrupting
	// shared memory).
	RemovedCorrupt RemovedCode = 4

	maxRemovedCode = RemovedCorrupt
)

func (c RemovedCode) String() string {
	switch c {
	case RemovedUnspecified:
		return "unspecified"
	case RemovedClosed:
		return "closed"
	case RemovedSubscriberGone:
		return "subscriber-gone"
	case RemovedPublisherGone:
		return "publisher-gone"
	case RemovedCorrupt:
		return "corrupt"
	}
	return fmt.Sprintf("removed-code(%d)", uint8(c))
}

// ConnectionClosing is pushed to the publisher's process when the
// subscriber of connection ConnID closed (or lost its control connection
// while its process may still live): the publisher stops delivering on it
// and keeps draining its return ring. A [ConnectionRemoved] follows once
// the subscriber released the connection (Code [RemovedClosed]) or its
// death was confirmed ([RemovedSubscriberGone]).
type ConnectionClosing struct {
	ConnID uint32
	PubID  uint32
	SubID  uint32
	Reason string
}

// MessageType implements [Message].
func (*ConnectionClosing) MessageType() Type { return TypeConnectionClosing }

// Validate implements [Message].
func (m *ConnectionClosing) Validate() error {
	if m.ConnID == 0 {
		return invalid(m.MessageType(), "ConnID", "is 0")
	}
	return checkLen(m.MessageType(), "Reason", m.Reason, MaxTextLen)
}

// Validate implements [Message].
func (m *ConnectionRemoved) Validate() error {
	if m.Code > maxRemovedCode {
		return invalid(m.MessageType(), "Code", "%d unknown", uint8(m.Code))
	}
	return checkLen(m.MessageType(), "Reason", m.Reason, MaxTextLen)
}

func init() { typeNames[TypeConnectionClosing] = "ConnectionClosing" }
