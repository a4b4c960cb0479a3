package wire

import (
	"testing"

	"github.com/stretchr/testify/require"
)

// ownedSamples holds one populated instance of every owned-model message;
// samples() appends them (golden files, round trips, fuzz seeds).
func ownedSamples() []struct {
	name  string
	reqID uint32
	msg   Message
} {
	return []struct {
		name  string
		reqID uint32
		msg   Message
	}{
		{"data_segment_added", 0, &DataSegmentAdded{Seg: DataSegDesc{PubID: 9, Index: 1, Kind: KindMemfd, ReadOnly: true,
			ChunkSize: 64, Count: 276, PageSize: 4096, Size: 36864}}},
		{"conn_segment_added", 0, &ConnSegmentAdded{Seg: ConnSegDesc{ConnID: 3, PubID: 9, SubID: 11, Capacity: 256,
			ReturnCapacity: 512, Bound: 272, MaxHeld: 16, Policy: PolicyDiscardOldest, Size: 8192}}},
	}
}

func TestOwnedPushesCarryOneFD(t *testing.T) {
	t.Parallel()
	for _, s := range ownedSamples() {
		require.True(t, s.msg.MessageType().IsPush(), s.name)
		require.Equal(t, 1, ExpectedFDs(s.msg), s.name)
		require.NoError(t, s.msg.Validate(), s.name)
	}
}

func TestOwnedValidate(t *testing.T) {
	t.Parallel()
	good := ownedSamples()
	d := *good[0].msg.(*DataSegmentAdded)
	for name, mut := range map[string]func(*DataSegDesc){
		"pub 0":       func(s *DataSegDesc) { s.PubID = 0 },
		"index":       func(s *DataSegDesc) { s.Index = MaxDataSegIndex },
		"kind":        func(s *DataSegDesc) { s.Kind = kindLastKind + 1 },
		"chunk":       func(s *DataSegDesc) { s.ChunkSize = 100 },
		"count 0":     func(s *DataSegDesc) { s.Count = 0 },
		"count big":   func(s *DataSegDesc) { s.Count = MaxDataSegCount + 1 },
		"page":        func(s *DataSegDesc) { s.PageSize = 3000 },
		"size short":  func(s *DataSegDesc) { s.Size = 4096 },
		"size ragged": func(s *DataSegDesc) { s.Size = 36865 },
	} {
		m := d
		mut(&m.Seg)
		require.ErrorIs(t, m.Validate(), ErrInvalidArgument, name)
	}
	c := *good[1].msg.(*ConnSegmentAdded)
	for name, mut := range map[string]func(*ConnSegDesc){
		"ids":    func(s *ConnSegDesc) { s.SubID = 0 },
		"cap":    func(s *ConnSegDesc) { s.Capacity = 3 },
		"ret":    func(s *ConnSegDesc) { s.ReturnCapacity = 0 },
		"bound":  func(s *ConnSegDesc) { s.Bound = 513 },
		"policy": func(s *ConnSegDesc) { s.Policy = 7 },
		"size":   func(s *ConnSegDesc) { s.Size = 0 },
	} {
		m := c
		mut(&m.Seg)
		require.ErrorIs(t, m.Validate(), ErrInvalidArgument, name)
	}
}
