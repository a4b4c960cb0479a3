package wire

// Pool growth and dedicated segments (types 40–47). A publisher whose loan
// finds its size class exhausted, or larger than every class, asks the
// router for more memory with [GrowPool]; a client that meets a reference
// into a pool it has not mapped asks for that pool with [GetSegments]. Both
// are answered by [PoolGranted], which carries one fd per segment. The
// router pushes [PoolRetired] when a dedicated pool is gone. Types 44–47 are
// reserved for further segment messages.
const (
	// TypeGrowPool asks for room for a loan; answered by [PoolGranted] or
	// an [Error] (CodePoolExhausted beyond the configured limits,
	// CodeNotSupported when growth is disabled).
	TypeGrowPool Type = 40
	// TypePoolGranted answers [GrowPool] and [GetSegments].
	TypePoolGranted Type = 41
	// TypeGetSegments asks for the segments of one pool; answered by
	// [PoolGranted] or an [Error] (CodeNotFound for an unknown or retired
	// pool).
	TypeGetSegments Type = 42
	// TypePoolRetired is a push: a dedicated pool whose chunk everybody
	// released is retired; clients drop their mapping of its segment.
	TypePoolRetired Type = 43

	// TypeSegmentsFirst..TypeSegmentsLast is the range of segment messages.
	TypeSegmentsFirst Type = 40
	TypeSegmentsLast  Type = 47
)

// MaxKnownPools bounds [GrowPool.Known].
const MaxKnownPools = 1024

// GrowPool asks the router for room for a loan of Size bytes. When Size
// fits a configured size class, the router grants the pools of that class
// the client does not list in Known (grown by someone else earlier) or,
// when it knows them all, adds a new pool to the class. When Size is larger
// than every class, it creates a dedicated single-chunk pool, loans its chunk
// to the client and returns the reference in [PoolGranted.Ref].
type GrowPool struct {
	Size  uint64
	Known []uint16
}

// PoolGranted answers [GrowPool] and [GetSegments]: the pools, laid out in
// the management segment the client already maps, and their payload
// segments (one fd per entry of Segments, in order; read-only for
// subscribers). Ref is non-zero for a dedicated pool created for a
// [GrowPool]: a chunk already loaned to the requesting client, which must
// record it as held.
type PoolGranted struct {
	Pools    []PoolDesc
	Segments []SegmentDesc
	Ref      uint64
}

// GetSegments asks for the segments of pool PoolID, read-only (subscribers)
// or read-write (publishers only).
type GetSegments struct {
	PoolID   uint16
	ReadOnly bool
}

// PoolRetired tells every client that dedicated pool PoolID is retired:
// nobody holds its chunk (the router loaned it to itself as a tombstone, so
// every old reference is stale) and its segment is closed on the router's
// side. A client forgets the pool and unmaps its payload segment, so the
// memory returns to the system (a memfd's pages live while anyone maps
// them). Base pools (ids below the Welcome's pool count) are never retired.
type PoolRetired struct {
	PoolID uint16
}

// MessageType implements [Message].
func (*PoolRetired) MessageType() Type { return TypePoolRetired }

// Validate implements [Message].
func (*PoolRetired) Validate() error { return nil }

// MessageType implements [Message].
func (*GrowPool) MessageType() Type { return TypeGrowPool }

// MessageType implements [Message].
func (*PoolGranted) MessageType() Type { return TypePoolGranted }

// MessageType implements [Message].
func (*GetSegments) MessageType() Type { return TypeGetSegments }

// Validate implements [Message].
func (m *GrowPool) Validate() error {
	if m.Size == 0 {
		return invalid(m.MessageType(), "Size", "is 0")
	}
	if len(m.Known) > MaxKnownPools {
		return invalid(m.MessageType(), "Known", "has %d entries, limit %d", len(m.Known), MaxKnownPools)
	}
	return nil
}

// Validate implements [Message].
func (m *PoolGranted) Validate() error {
	if len(m.Pools) != len(m.Segments) {
		return invalid(m.MessageType(), "Segments", "has %d entries for %d pools", len(m.Segments), len(m.Pools))
	}
	return checkSegments(m.MessageType(), m.Segments)
}

// Validate implements [Message].
func (*GetSegments) Validate() error { return nil }

func init() {
	typeNames[TypeGrowPool] = "GrowPool"
	typeNames[TypePoolGranted] = "PoolGranted"
	typeNames[TypeGetSegments] = "GetSegments"
	typeNames[TypePoolRetired] = "PoolRetired"
}

// segmentsReplyType is ReplyType for the segment range.
func segmentsReplyType(t Type) (Type, bool) {
	if t == TypeGrowPool || t == TypeGetSegments {
		return TypePoolGranted, true
	}
	return 0, false
}

// newSegments is New for the segment range.
func newSegments(t Type) Message {
	switch t {
	case TypeGrowPool:
		return new(GrowPool)
	case TypePoolGranted:
		return new(PoolGranted)
	case TypeGetSegments:
		return new(GetSegments)
	case TypePoolRetired:
		return new(PoolRetired)
	}
	return nil
}
