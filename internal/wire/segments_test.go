package wire

import (
	"testing"

	"github.com/stretchr/testify/require"
)

// segmentsSamples holds one populated instance of every segment message;
// samples() appends them (golden files, round trips, fuzz seeds).
func segmentsSamples() []struct {
	name  string
	reqID uint32
	msg   Message
} {
	grown := SegmentDesc{ID: 8, Role: RolePayload, Kind: KindMemfd, Size: 1 << 20, PageSize: 4096, PoolID: 7}
	return []struct {
		name  string
		reqID uint32
		msg   Message
	}{
		{"grow_pool", 40, &GrowPool{Size: 4096, Known: []uint16{1, 6}}},
		{"pool_granted", 40, &PoolGranted{Pools: []PoolDesc{{ID: 7, ChunkSize: 4096, Count: 256, MgmtOffset: 1 << 16, MgmtSize: 20480, SegmentID: 8}},
			Segments: []SegmentDesc{grown}, Ref: 0x0007_000001_000002}},
		{"get_segments", 41, &GetSegments{PoolID: 7, ReadOnly: true}},
		{"pool_retired", 0, &PoolRetired{PoolID: 9}},
	}
}

func TestSegmentsTypes(t *testing.T) {
	t.Parallel()
	for _, typ := range []Type{TypeGrowPool, TypeGetSegments} {
		r, ok := ReplyType(typ)
		require.True(t, ok)
		require.Equal(t, TypePoolGranted, r)
		require.False(t, typ.IsPush())
	}
	_, ok := ReplyType(TypePoolGranted)
	require.False(t, ok)
	require.True(t, TypePoolRetired.IsPush())
	_, ok = ReplyType(TypePoolRetired)
	require.False(t, ok)
	require.Nil(t, New(TypeSegmentsLast))
	s := segmentsSamples()
	require.Equal(t, 1, ExpectedFDs(s[1].msg))
	require.Equal(t, 0, ExpectedFDs(s[0].msg))
}

func TestSegmentsValidate(t *testing.T) {
	t.Parallel()
	require.ErrorIs(t, (&GrowPool{}).Validate(), ErrInvalidArgument)
	require.ErrorIs(t, (&GrowPool{Size: 1, Known: make([]uint16, MaxKnownPools+1)}).Validate(), ErrInvalidArgument)
	require.ErrorIs(t, (&PoolGranted{Pools: []PoolDesc{{ID: 1}}}).Validate(), ErrInvalidArgument)
	require.ErrorIs(t, (&PoolGranted{Pools: []PoolDesc{{ID: 1}}, Segments: []SegmentDesc{{Role: 9}}}).Validate(), ErrInvalidArgument)
	require.NoError(t, (&PoolGranted{}).Validate())
	require.NoError(t, (&GetSegments{}).Validate())
}
