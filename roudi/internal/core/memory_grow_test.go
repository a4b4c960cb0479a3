package core

import (
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/parallax-ipc/parallax"
)

// TestGrowRetireLoop: a publisher streaming oversized frames grows a
// dedicated 8 MiB segment and retires it 10 000 times with a subscriber
// connected, under max_segments_per_publisher 3 and a byte limit that
// holds only one such segment at a time: the index is reused every cycle,
// the connected client is granted and told each time, and the accounting
// ends where it began (issue 14: "a stream of 8 MiB frames runs forever").
func TestGrowRetireLoop(t *testing.T) {
	t.Parallel()
	r := newTestRouter(t, func(c *Rules) {
		c.Memory.Hugepages = HugeNever
		c.Memory.MaxSegmentsPerPublisher = 3
		c.Memory.MaxPublisherBytes = 100 << 20
	}, RouterOptions{Sizes: testSizes})
	do(t, r, ClientConnected{Conn: 1, PID: 1})
	do(t, r, ClientConnected{Conn: 2, PID: 2})
	untyped := TypeInfo{Name: "frame"}
	do(t, r, ClientRequest{Conn: 1, ReqID: 1, Req: CreatePublisher{Topic: "frames", Type: untyped}})
	do(t, r, DataSegmentCreated{Pub: 1, Index: 0})
	do(t, r, ClientRequest{Conn: 2, ReqID: 2, Req: CreateSubscriber{Topic: "frames", Type: untyped}})
	do(t, r, ConnSegmentCreated{Connection: 1})
	before := r.Memory()

	for i := range 10_000 {
		req := uint32(10 + 2*i)
		as := do(t, r, ClientRequest{Conn: 1, ReqID: req, Req: GrowData{Pub: 1, ChunkSize: 8 << 20, Oversized: true}})
		cr := actionsOf[CreateDataSegment](as)
		require.Len(t, cr, 1, "cycle %d: %v", i, as)
		require.Equal(t, CreateDataSegment{Pub: 1, Index: 1, ChunkSize: 8 << 20, Count: 8, Bytes: cr[0].Bytes}, cr[0], "cycle %d", i)
		as = do(t, r, DataSegmentCreated{Pub: 1, Index: 1})
		require.Equal(t, []GrantSegments{{Conn: 2, Pub: 1, Data: []uint16{1}, ReadOnly: true}}, actionsOf[GrantSegments](as), "cycle %d", i)
		rp := replyOf(t, as)
		require.NoError(t, rp.Err, "cycle %d", i)
		require.Equal(t, DataSegmentGranted{Pub: 1, Index: 1}, rp.Result, "cycle %d", i)

		as = do(t, r, ClientRequest{Conn: 1, ReqID: req + 1, Req: RetireData{Pub: 1, Index: 1}})
		require.NoError(t, replyOf(t, as).Err, "cycle %d", i)
		require.Equal(t, []CloseDataSegments{{Pub: 1, Indices: []uint16{1}}}, actionsOf[CloseDataSegments](as), "cycle %d", i)
		require.Equal(t, []TellDataRetired{{Conn: 2, Pub: 1, Index: 1}}, actionsOf[TellDataRetired](as), "cycle %d", i)
	}
	require.Equal(t, before, r.Memory())

	// Within the limits, not around them: two 8 MiB segments at once do
	// not fit max_publisher_bytes.
	do(t, r, ClientRequest{Conn: 1, ReqID: 1 << 30, Req: GrowData{Pub: 1, ChunkSize: 8 << 20, Oversized: true}})
	do(t, r, DataSegmentCreated{Pub: 1, Index: 1})
	rp := replyOf(t, do(t, r, ClientRequest{Conn: 1, ReqID: 1<<30 + 1, Req: GrowData{Pub: 1, ChunkSize: 8 << 20, Oversized: true}}))
	require.ErrorIs(t, rp.Err, parallax.ErrLimit)
	require.ErrorContains(t, rp.Err, "limits.max_publisher_bytes")
}
