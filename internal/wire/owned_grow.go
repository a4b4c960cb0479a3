package wire

// Growth, dedicated segments and retirement in the owned memory model
// (design docs/design/memory-ownership.md §1.3, §3.2, §5, step 9):
//
//   - [GrowData] (publisher → router): one more data segment for the
//     publisher, of its own size class (growth) or, for a loan larger than
//     the class, a dedicated class. Answered by [DataSegmentAdded] with the
//     read-write fd (a reply: request id ≠ 0), or an [Error] (CodeLimit
//     naming the [limits] key, the publisher, the bytes asked and in use).
//     The router first pushes the segment read-only to every client with a
//     live connection to the publisher, so a subscriber never meets a
//     reference into a segment it cannot map.
//   - [RetireData] (publisher → router): the publisher no longer uses one of
//     its segments (none of its chunks is out). Answered by [Ack]; the
//     router closes its fds, frees the index for reuse and pushes
//     [DataSegmentRetired] to every client with a live connection to it.
//   - [GetDataSegment] (subscriber → router): the read-only fd of one data
//     segment of the publisher of a live connection whose subscriber side
//     the client is, answered by [DataSegmentAdded] (read-only).
//
// These requests use types 44–46: 40–43 stay reserved for the removed
// shared model's GrowPool, PoolGranted, GetSegments and PoolRetired.
const (
	// TypeDataSegmentRetired is a push: a data segment index of a
	// publisher is retired; unmap it (the index may come back with
	// another segment).
	TypeDataSegmentRetired Type = 37
	// TypeGrowData asks for a data segment; answered by
	// [DataSegmentAdded] or an [Error].
	TypeGrowData Type = 44
	// TypeRetireData retires a data segment; answered by [Ack].
	TypeRetireData Type = 45
	// TypeGetDataSegment asks for a publisher's data segment through a
	// connection; answered by [DataSegmentAdded] (read-only).
	TypeGetDataSegment Type = 46
)

// Reasons of a [GrowData].
const (
	// GrowExhausted: the publisher's size class has no free chunk left
	// within its loans; ChunkSize is at most the class.
	GrowExhausted uint8 = 1
	// GrowOversized: a loan larger than the class; ChunkSize is its size
	// (the router rounds it up to a power of two).
	GrowOversized uint8 = 2
	// GrowUndersized: an untyped publisher that declared no payload size
	// loans ChunkSize bytes, far below its (default) class; it asks for a
	// class of small chunks (the router rounds ChunkSize up to a power of
	// two, at least 64, and refuses one not below the class).
	GrowUndersized uint8 = 3
)

// MaxGrowChunk bounds [GrowData.ChunkSize]: its power-of-two round-up
// fits a uint32 chunk size.
const MaxGrowChunk = 1 << 31

// GrowData asks the router for one more data segment of publisher PubID
// for a loan of ChunkSize bytes. Count is the chunks wanted; 0 lets the
// router size it (growth: as many chunks as the publisher has, doubling;
// dedicated: its max loans plus every connection's bound at that size).
type GrowData struct {
	PubID     uint32
	ChunkSize uint32
	Count     uint32
	Reason    uint8 // GrowExhausted, GrowOversized or GrowUndersized
}

// RetireData retires data segment Index of publisher PubID.
type RetireData struct {
	PubID uint32
	Index uint16
}

// GetDataSegment asks for data segment Index of the publisher of
// connection ConnID.
type GetDataSegment struct {
	ConnID uint32
	Index  uint16
}

// DataSegmentRetired tells a client connected to publisher PubID that its
// data segment Index is retired.
type DataSegmentRetired struct {
	PubID uint32
	Index uint16
}

// MessageType implements [Message].
func (*GrowData) MessageType() Type { return TypeGrowData }

// MessageType implements [Message].
func (*RetireData) MessageType() Type { return TypeRetireData }

// MessageType implements [Message].
func (*GetDataSegment) MessageType() Type { return TypeGetDataSegment }

// MessageType implements [Message].
func (*DataSegmentRetired) MessageType() Type { return TypeDataSegmentRetired }

// Validate implements [Message].
func (m *GrowData) Validate() error {
	t := m.MessageType()
	switch {
	case m.PubID == 0:
		return invalid(t, "PubID", "is 0")
	case m.ChunkSize == 0 || m.ChunkSize > MaxGrowChunk:
		return invalid(t, "ChunkSize", "%d is not in [1, %d]", m.ChunkSize, uint32(MaxGrowChunk))
	case m.Count > MaxDataSegCount:
		return invalid(t, "Count", "%d exceeds %d", m.Count, MaxDataSegCount)
	case m.Reason != GrowExhausted && m.Reason != GrowOversized && m.Reason != GrowUndersized:
		return invalid(t, "Reason", "%d unknown", m.Reason)
	}
	return nil
}

// Validate implements [Message].
func (m *RetireData) Validate() error { return checkSegRef(m.MessageType(), "PubID", m.PubID, m.Index) }

// Validate implements [Message].
func (m *GetDataSegment) Validate() error {
	return checkSegRef(m.MessageType(), "ConnID", m.ConnID, m.Index)
}

// Validate implements [Message].
func (m *DataSegmentRetired) Validate() error {
	return checkSegRef(m.MessageType(), "PubID", m.PubID, m.Index)
}

func checkSegRef(t Type, idField string, id uint32, index uint16) error {
	switch {
	case id == 0:
		return invalid(t, idField, "is 0")
	case index >= MaxDataSegIndex:
		return invalid(t, "Index", "%d, limit %d", index, MaxDataSegIndex-1)
	}
	return nil
}

// answersRequests reports whether push type t may also answer a request
// (then with its request id): [DataSegmentAdded] answers [GrowData] and
// [GetDataSegment].
func (t Type) answersRequests() bool { return t == TypeDataSegmentAdded }

func init() {
	typeNames[TypeDataSegmentRetired] = "DataSegmentRetired"
	typeNames[TypeGrowData] = "GrowData"
	typeNames[TypeRetireData] = "RetireData"
	typeNames[TypeGetDataSegment] = "GetDataSegment"
}

// ownedGrowReplyType is ReplyType for the requests of this file.
func ownedGrowReplyType(t Type) (Type, bool) {
	switch t {
	case TypeGrowData, TypeGetDataSegment:
		return TypeDataSegmentAdded, true
	case TypeRetireData:
		return TypeAck, true
	}
	return 0, false
}

func newOwnedGrow(t Type) Message {
	switch t {
	case TypeGrowData:
		return new(GrowData)
	case TypeRetireData:
		return new(RetireData)
	case TypeGetDataSegment:
		return new(GetDataSegment)
	case TypeDataSegmentRetired:
		return new(DataSegmentRetired)
	}
	return nil
}
