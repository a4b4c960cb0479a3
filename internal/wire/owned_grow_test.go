package wire

import (
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/parallax-ipc/parallax"
)

// ownedGrowSamples holds one populated instance of every message of
// owned_grow.go, and DataSegmentAdded as a reply; samples() appends them
// (golden files, round trips, fuzz seeds).
func ownedGrowSamples() []struct {
	name  string
	reqID uint32
	msg   Message
} {
	return []struct {
		name  string
		reqID uint32
		msg   Message
	}{
		{"grow_data", 12, &GrowData{PubID: 9, ChunkSize: 8 << 20, Count: 0, Reason: GrowOversized}},
		{"data_segment_added_reply", 12, &DataSegmentAdded{Seg: DataSegDesc{PubID: 9, Index: 2, Kind: KindHugetlb,
			ChunkSize: 8 << 20, Count: 8, PageSize: 2 << 20, Size: 70 << 20}}},
		{"retire_data", 13, &RetireData{PubID: 9, Index: 2}},
		{"get_data_segment", 14, &GetDataSegment{ConnID: 3, Index: 2}},
		{"data_segment_retired", 0, &DataSegmentRetired{PubID: 9, Index: 2}},
		{"grow_data_undersized", 15, &GrowData{PubID: 9, ChunkSize: 64, Count: 0, Reason: GrowUndersized}},
	}
}

func TestOwnedGrowTypes(t *testing.T) {
	t.Parallel()
	for typ, want := range map[Type]Type{TypeGrowData: TypeDataSegmentAdded, TypeGetDataSegment: TypeDataSegmentAdded, TypeRetireData: TypeAck} {
		r, ok := ReplyType(typ)
		require.True(t, ok, "%s", typ)
		require.Equal(t, want, r, "%s", typ)
		require.False(t, typ.IsPush(), "%s", typ)
	}
	require.True(t, TypeDataSegmentRetired.IsPush())
	_, ok := ReplyType(TypeDataSegmentRetired)
	require.False(t, ok)
	for _, s := range ownedGrowSamples() {
		require.Equal(t, map[bool]int{true: 1}[s.msg.MessageType() == TypeDataSegmentAdded], ExpectedFDs(s.msg), s.name)
	}

	// DataSegmentAdded is a push (id 0) or a reply (id ≠ 0); every other
	// push still needs id 0, both ways.
	for _, id := range []uint32{0, 7} {
		b, err := Encode(id, &DataSegmentAdded{Seg: ownedGrowSamples()[1].msg.(*DataSegmentAdded).Seg})
		require.NoError(t, err)
		env, err := Decode(b)
		require.NoError(t, err)
		require.Equal(t, id, env.ReqID)
	}
	_, err := Encode(7, &DataSegmentRetired{PubID: 9, Index: 2})
	require.ErrorIs(t, err, ErrInvalidArgument)
	b, err := encode(7, &DataSegmentRetired{PubID: 9, Index: 2})
	require.NoError(t, err)
	_, err = Decode(b)
	require.ErrorIs(t, err, parallax.ErrProtocol)
	require.ErrorContains(t, err, "push with request id 7")
}

func TestOwnedGrowValidate(t *testing.T) {
	t.Parallel()
	for name, m := range map[string]Message{
		"grow pub 0":     &GrowData{ChunkSize: 64, Reason: GrowExhausted},
		"grow chunk 0":   &GrowData{PubID: 1, Reason: GrowExhausted},
		"grow chunk big": &GrowData{PubID: 1, ChunkSize: MaxGrowChunk + 1, Reason: GrowOversized},
		"grow count":     &GrowData{PubID: 1, ChunkSize: 64, Count: MaxDataSegCount + 1, Reason: GrowExhausted},
		"grow reason 0":  &GrowData{PubID: 1, ChunkSize: 64},
		"grow reason 4":  &GrowData{PubID: 1, ChunkSize: 64, Reason: 4},
		"retire pub 0":   &RetireData{Index: 1},
		"retire index":   &RetireData{PubID: 1, Index: MaxDataSegIndex},
		"get conn 0":     &GetDataSegment{Index: 1},
		"get index":      &GetDataSegment{ConnID: 1, Index: MaxDataSegIndex},
		"retired pub 0":  &DataSegmentRetired{Index: 1},
		"retired index":  &DataSegmentRetired{PubID: 1, Index: MaxDataSegIndex},
	} {
		err := m.Validate()
		require.ErrorIs(t, err, ErrInvalidArgument, name)
		// A peer's message failing validation is a protocol error.
		b, eerr := encode(1, m)
		if m.MessageType().IsPush() {
			b, eerr = encode(0, m)
		}
		require.NoError(t, eerr, name)
		_, err = Decode(b)
		require.ErrorIs(t, err, parallax.ErrProtocol, name)
	}
	for _, s := range ownedGrowSamples() {
		require.NoError(t, s.msg.Validate(), s.name)
	}
	require.NoError(t, (&GrowData{PubID: 1, ChunkSize: MaxGrowChunk, Count: MaxDataSegCount, Reason: GrowOversized}).Validate())
}
