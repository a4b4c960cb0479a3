package core

import (
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/parallax-ipc/parallax"
)

// TestGrowUndersized: an untyped publisher that declared no max payload
// gets an undersized class (roundup_pow2(max(size, 64)), sized like a
// dedicated class: MaxLoans + Σ bound(c) at that size), granted to its
// subscriber's client first and retirable like a dedicated segment; a
// declared, a typed publisher, a size not below the class and one beyond
// the limits are refused with a message saying why.
func TestGrowUndersized(t *testing.T) {
	t.Parallel()
	r := newTestRouter(t, func(c *Rules) {
		c.Memory.Hugepages = HugeNever
		c.Memory.MaxSegmentsPerPublisher = 2
	}, RouterOptions{Sizes: testSizes})
	do(t, r, ClientConnected{Conn: 1, PID: 1})
	do(t, r, ClientConnected{Conn: 2, PID: 2})
	untyped := TypeInfo{Name: "blob"}
	do(t, r, ClientRequest{Conn: 1, ReqID: 1, Req: CreatePublisher{Topic: "small", Type: untyped}})
	do(t, r, DataSegmentCreated{Pub: 1, Index: 0})
	do(t, r, ClientRequest{Conn: 1, ReqID: 2, Req: CreatePublisher{Topic: "declared", Type: untyped, MaxPayload: 4096}})
	do(t, r, DataSegmentCreated{Pub: 2, Index: 0})
	do(t, r, ClientRequest{Conn: 1, ReqID: 3, Req: CreatePublisher{Topic: "typed", Type: TypeInfo{Name: "T", Size: 4096}}})
	do(t, r, DataSegmentCreated{Pub: 3, Index: 0})
	do(t, r, ClientRequest{Conn: 2, ReqID: 4, Req: CreateSubscriber{Topic: "small", Type: untyped}})
	do(t, r, ConnSegmentCreated{Connection: 1})

	// Refusals, each naming why.
	for name, c := range map[string]struct {
		req  GrowData
		want string
	}{
		"declared":     {GrowData{Pub: 2, ChunkSize: 64, Undersized: true}, "declared no max payload"},
		"typed":        {GrowData{Pub: 3, ChunkSize: 64, Undersized: true}, "declared no max payload"},
		"not below":    {GrowData{Pub: 1, ChunkSize: 4096, Undersized: true}, "not undersized"},
		"rounds up to": {GrowData{Pub: 1, ChunkSize: 2049, Undersized: true}, "rounds up to 4096-byte chunks"},
		"both":         {GrowData{Pub: 1, ChunkSize: 64, Undersized: true, Oversized: true}, "both oversized and undersized"},
	} {
		rp := replyOf(t, do(t, r, ClientRequest{Conn: 1, ReqID: 10, Req: c.req}))
		require.ErrorIs(t, rp.Err, parallax.ErrInvalidArgument, name)
		require.ErrorContains(t, rp.Err, c.want, name)
	}

	// Accepted: 40 bytes round up to 64-byte chunks, 4 loans + the
	// subscriber's bound (256 + 16).
	as := do(t, r, ClientRequest{Conn: 1, ReqID: 20, Req: GrowData{Pub: 1, ChunkSize: 40, Undersized: true}})
	cr := actionsOf[CreateDataSegment](as)
	require.Len(t, cr, 1, "%v", as)
	require.Equal(t, CreateDataSegment{Pub: 1, Index: 1, ChunkSize: 64, Count: 4 + 256 + 16, Bytes: cr[0].Bytes}, cr[0])
	as = do(t, r, DataSegmentCreated{Pub: 1, Index: 1})
	require.Equal(t, []GrantSegments{{Conn: 2, Pub: 1, Data: []uint16{1}, ReadOnly: true}}, actionsOf[GrantSegments](as))
	rp := replyOf(t, as)
	require.NoError(t, rp.Err)
	require.Equal(t, DataSegmentGranted{Pub: 1, Index: 1}, rp.Result)

	// The [limits] apply: a second segment exceeds
	// max_segments_per_publisher 2.
	before := r.Memory()
	rp = replyOf(t, do(t, r, ClientRequest{Conn: 1, ReqID: 21, Req: GrowData{Pub: 1, ChunkSize: 200, Undersized: true}}))
	require.ErrorIs(t, rp.Err, parallax.ErrLimit)
	require.ErrorContains(t, rp.Err, "limits.max_segments_per_publisher")
	require.Equal(t, before, r.Memory())

	// Retired like a dedicated segment: the class invariant does not
	// need its chunks.
	as = do(t, r, ClientRequest{Conn: 1, ReqID: 22, Req: RetireData{Pub: 1, Index: 1}})
	require.NoError(t, replyOf(t, as).Err)
	require.Equal(t, []TellDataRetired{{Conn: 2, Pub: 1, Index: 1}}, actionsOf[TellDataRetired](as))
}
