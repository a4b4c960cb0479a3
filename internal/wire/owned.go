package wire

// Owned memory model grants (design docs/design/memory-ownership.md §5):
// pushes that hand a client the fd of one owned segment. The router sends
// them only in the owned model ([memory] model = "owned"), as its core
// decides: a publisher's data segments read-write to its own client and
// read-only to the clients of its connected subscribers, a connection's
// segment to both ends. Each carries exactly one fd.
const (
	// TypeDataSegmentAdded is a push: one data segment of a publisher.
	TypeDataSegmentAdded Type = 36
	// TypeConnSegmentAdded is a push: the segment of one connection.
	TypeConnSegmentAdded Type = 38
)

// Bounds of owned segment descriptors.
const (
	MaxDataSegIndex = 4096    // data segment indices per publisher
	MaxDataSegCount = 1 << 24 // chunks per data segment (the ChunkRef slot field)
	MaxConnCapacity = 1 << 24 // ring capacity of a connection segment
)

// DataSegDesc describes one data segment of a publisher; its fd travels
// beside the message. Clients recompute the layout from ChunkSize, Count
// and PageSize (package dataseg) and check Size against fstat.
type DataSegDesc struct {
	PubID     uint32
	Index     uint16 // the ChunkRef segment field
	Kind      uint8  // KindMemfd, KindHugetlb or KindFile
	ReadOnly  bool
	ChunkSize uint32 // a multiple of 64
	Count     uint32
	PageSize  uint32
	Size      uint64
}

// ConnSegDesc describes one connection segment (package ringbuf's
// connection layout); its fd travels beside the message.
type ConnSegDesc struct {
	ConnID, PubID, SubID uint32
	Capacity             uint32 // data ring, a power of two
	ReturnCapacity       uint32 // return ring, a power of two ≥ Bound
	Bound                uint32 // the publisher's cap on chunks outstanding
	MaxHeld              uint32
	Policy               uint8
	Size                 uint64
}

// DataSegmentAdded hands the client one data segment (one fd).
type DataSegmentAdded struct{ Seg DataSegDesc }

// ConnSegmentAdded hands the client one connection segment (one fd).
type ConnSegmentAdded struct{ Seg ConnSegDesc }

// MessageType implements [Message].
func (*DataSegmentAdded) MessageType() Type { return TypeDataSegmentAdded }

// MessageType implements [Message].
func (*ConnSegmentAdded) MessageType() Type { return TypeConnSegmentAdded }

// Validate implements [Message].
func (m *DataSegmentAdded) Validate() error { return validateDataSeg(m.MessageType(), &m.Seg) }

// validateDataSeg checks a data segment descriptor of a message of type t.
func validateDataSeg(t Type, s *DataSegDesc) error {
	switch {
	case s.PubID == 0:
		return invalid(t, "Seg.PubID", "is 0")
	case s.Index >= MaxDataSegIndex:
		return invalid(t, "Seg.Index", "%d, limit %d", s.Index, MaxDataSegIndex-1)
	case s.Kind != KindMemfd && s.Kind != KindHugetlb && s.Kind != KindFile:
		return invalid(t, "Seg.Kind", "%d unknown", s.Kind)
	case s.ChunkSize == 0 || s.ChunkSize%64 != 0:
		return invalid(t, "Seg.ChunkSize", "%d is not a positive multiple of 64", s.ChunkSize)
	case s.Count == 0 || s.Count > MaxDataSegCount:
		return invalid(t, "Seg.Count", "%d is not in [1, %d]", s.Count, MaxDataSegCount)
	case !isPow2(uint64(s.PageSize)) || s.PageSize < MinPageSize || s.PageSize > MaxPageSize:
		return invalid(t, "Seg.PageSize", "%d is not a power of two in [%d, %d]", s.PageSize, MinPageSize, MaxPageSize)
	case s.Size == 0 || s.Size%uint64(s.PageSize) != 0 || s.Size < uint64(s.ChunkSize)*uint64(s.Count):
		return invalid(t, "Seg.Size", "%d does not hold %d chunks of %d bytes in whole pages", s.Size, s.Count, s.ChunkSize)
	}
	return nil
}

// Validate implements [Message].
func (m *ConnSegmentAdded) Validate() error { return validateConnSeg(m.MessageType(), &m.Seg) }

// validateConnSeg checks a connection segment descriptor of a message of
// type t.
func validateConnSeg(t Type, s *ConnSegDesc) error {
	pow2 := func(v uint32) bool { return v >= 1 && v <= MaxConnCapacity && isPow2(uint64(v)) }
	switch {
	case s.ConnID == 0 || s.PubID == 0 || s.SubID == 0:
		return invalid(t, "Seg", "connection %d, publisher %d, subscriber %d: ids must not be 0", s.ConnID, s.PubID, s.SubID)
	case !pow2(s.Capacity):
		return invalid(t, "Seg.Capacity", "%d is not a power of two in [1, %d]", s.Capacity, MaxConnCapacity)
	case !pow2(s.ReturnCapacity):
		return invalid(t, "Seg.ReturnCapacity", "%d is not a power of two in [1, %d]", s.ReturnCapacity, MaxConnCapacity)
	case s.Bound == 0 || s.Bound > s.ReturnCapacity:
		return invalid(t, "Seg.Bound", "%d is not in [1, return capacity %d]", s.Bound, s.ReturnCapacity)
	case s.Policy != PolicyDiscardOldest && s.Policy != PolicyBlockProducer:
		return invalid(t, "Seg.Policy", "%d unknown", s.Policy)
	case s.Size == 0:
		return invalid(t, "Seg.Size", "is 0")
	}
	return nil
}

func init() {
	typeNames[TypeDataSegmentAdded] = "DataSegmentAdded"
	typeNames[TypeConnSegmentAdded] = "ConnSegmentAdded"
}

func newOwned(t Type) Message {
	switch t {
	case TypeDataSegmentAdded:
		return new(DataSegmentAdded)
	case TypeConnSegmentAdded:
		return new(ConnSegmentAdded)
	}
	return nil
}
