package wire

// Peer reports (types 48–55). A client that meets evidence of a faulty or
// hostile peer in a connection segment tells the router, which cuts that
// connection when the reporter is one of its ends (see the roudi package's
// trust model). Type 49 is a component's counter report ([ReportCounters],
// counters.go); types 50–55 are reserved for further reports.
const (
	// TypeReportPeer reports a bad entry popped from a connection's ring;
	// answered by [Ack] (also when the router refuses the report: the
	// reporter is no end of the connection) or an [Error] for a malformed
	// report.
	TypeReportPeer Type = 48

	// TypeReportFirst..TypeReportLast is the range of peer reports.
	TypeReportFirst Type = 48
	TypeReportLast  Type = 55
)

// Reasons of a [ReportPeer].
const (
	// ReportBadRef: the ring carried a value that names no chunk the
	// peer may pass (segment or slot out of range, wrong generation, a
	// return of a chunk never delivered).
	ReportBadRef uint8 = 1
	// ReportCorruptRing: the connection's ring indices are impossible
	// (ringbuf.ErrCorruptRing); the reporter stopped using the ring. Either
	// end of the connection may send it; Ref is 0.
	ReportCorruptRing uint8 = 2
	reportLast              = ReportCorruptRing
)

// ReportPeer is sent by the consumer (subscriber side) of connection ConnID
// when it popped Ref from the connection's ring and Ref failed validation
// ([ReportBadRef]), or by either end when the ring's indices are impossible
// ([ReportCorruptRing]). SubID is the reporting subscriber (0 from a
// publisher); Detail is the error's text, for the router's log.
type ReportPeer struct {
	ConnID uint32
	SubID  uint32
	Ref    uint64
	Reason uint8
	Detail string
}

// MessageType implements [Message].
func (*ReportPeer) MessageType() Type { return TypeReportPeer }

// Validate implements [Message].
func (m *ReportPeer) Validate() error {
	if m.ConnID == 0 {
		return invalid(m.MessageType(), "ConnID", "is 0")
	}
	if m.Reason == 0 || m.Reason > reportLast {
		return invalid(m.MessageType(), "Reason", "%d unknown", m.Reason)
	}
	return checkLen(m.MessageType(), "Detail", m.Detail, MaxTextLen)
}

func init() {
	typeNames[TypeReportPeer] = "ReportPeer"
}

// reportReplyType is ReplyType for the report range.
func reportReplyType(t Type) (Type, bool) {
	if t == TypeReportPeer {
		return TypeAck, true
	}
	return 0, false
}

// newReport is New for the report range.
func newReport(t Type) Message {
	if t == TypeReportPeer {
		return new(ReportPeer)
	}
	return nil
}
