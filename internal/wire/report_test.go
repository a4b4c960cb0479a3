package wire

import (
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
)

// reportSamples holds one populated instance of every peer-report message;
// samples() appends them (golden files, round trips, fuzz seeds).
func reportSamples() []struct {
	name  string
	reqID uint32
	msg   Message
} {
	return []struct {
		name  string
		reqID uint32
		msg   Message
	}{
		{"report_peer", 30, &ReportPeer{ConnID: 3, SubID: 11, Ref: 0xdead_beef_0000_0001, Reason: ReportBadRef,
			Detail: "validate ref pool=57005 slot=48879 gen=1: invalid chunk reference"}},
		{"report_peer_corrupt_ring", 31, &ReportPeer{ConnID: 4, SubID: 12, Reason: ReportCorruptRing,
			Detail: "ring tail is not within the capacity ahead of head (tail far ahead, or head past tail): corrupt ring indices: corrupt shared memory layout"}},
	}
}

func TestReportTypes(t *testing.T) {
	t.Parallel()
	rep, ok := ReplyType(TypeReportPeer)
	require.True(t, ok)
	require.Equal(t, TypeAck, rep)
	require.False(t, TypeReportPeer.IsPush())
	require.True(t, TypeReportPeer.Known())
	require.Equal(t, "ReportPeer", TypeReportPeer.String())
	require.IsType(t, &ReportPeer{}, New(TypeReportPeer))
	require.GreaterOrEqual(t, TypeReportPeer, TypeReportFirst)
	require.LessOrEqual(t, TypeReportPeer, TypeReportLast)
}

func TestReportRejects(t *testing.T) {
	t.Parallel()
	for name, m := range map[string]*ReportPeer{
		"conn 0":         {ConnID: 0, Reason: ReportBadRef},
		"reason 0":       {ConnID: 1},
		"unknown reason": {ConnID: 1, Reason: 200},
		"long detail":    {ConnID: 1, Reason: ReportBadRef, Detail: strings.Repeat("x", MaxTextLen+1)},
	} {
		err := m.Validate()
		require.ErrorIs(t, err, ErrInvalidArgument, name)
		_, err = Encode(1, m)
		require.Error(t, err, name)
	}
}
