package core

import (
	"testing"

	"github.com/stretchr/testify/require"
)

// TestCloseDataSegmentsTopic: the close of a gone publisher's segments
// names its topic, closed or departed with its client, so the server
// reads its segment-0 counters first (design §8.20); a retired segment's
// close names none (TestGrowRetireLoop).
func TestCloseDataSegmentsTopic(t *testing.T) {
	t.Parallel()
	for _, how := range []string{"closed", "disconnected", "exited"} {
		t.Run(how, func(t *testing.T) {
			t.Parallel()
			r := newTestRouter(t, func(c *Rules) { c.Memory.Hugepages = HugeNever }, RouterOptions{Sizes: testSizes})
			do(t, r, ClientConnected{Conn: 1, PID: 11})
			do(t, r, ClientRequest{Conn: 1, ReqID: 1, Req: CreatePublisher{Topic: "frames", Type: TypeInfo{Name: "frame"}}})
			do(t, r, DataSegmentCreated{Pub: 1, Index: 0})
			var as []Action
			switch how {
			case "closed":
				as = do(t, r, ClientRequest{Conn: 1, ReqID: 2, Req: ClosePublisher{Pub: 1}})
			case "disconnected":
				as = do(t, r, ClientDisconnected{Conn: 1})
			case "exited":
				as = do(t, r, ProcessExited{PID: 11})
			}
			require.Equal(t, []CloseDataSegments{{Pub: 1, Indices: []uint16{0}, Topic: "frames"}}, actionsOf[CloseDataSegments](as), "%v", as)
		})
	}
}
