package core

import (
	"fmt"
	"testing"

	"github.com/stretchr/testify/require"
)

// TestWatchQuietStep: with a watcher and many topics, a step that changes
// no service emits nothing for the watcher and allocates nothing in the
// comparison.
func TestWatchQuietStep(t *testing.T) {
	// Not parallel: AllocsPerRun refuses parallel tests.
	r := newTestRouter(t, nil, RouterOptions{})
	doAck(t, r, ClientConnected{Conn: 1, PID: 10, Name: "pubs"})
	doAck(t, r, ClientConnected{Conn: 2, PID: 20, Name: "watcher"})
	for i := range 200 {
		rp := replyOf(t, doAck(t, r, ClientRequest{Conn: 1, ReqID: uint32(i + 1), Req: CreatePublisher{Topic: fmt.Sprintf("t/%d", i), Type: TypeInfo{Name: "T", Size: 8, Align: 8}}}))
		require.NoError(t, rp.Err)
	}
	as := doAck(t, r, ClientRequest{Conn: 2, ReqID: 1, Req: WatchServices{}})
	require.Len(t, actionsOf[ServiceChanged](as), 200, "the snapshot")
	require.Len(t, actionsOf[WatchSynced](as), 1)

	quiet := ProcessExited{PID: 999} // nobody has that pid
	allocs := testing.AllocsPerRun(100, func() { r.watchStep(quiet) })
	require.Zero(t, allocs)
	require.Empty(t, actionsOf[ServiceChanged](doAck(t, r, quiet)))

	// One change: one event, for that topic only.
	as = doAck(t, r, ClientRequest{Conn: 1, ReqID: 500, Req: ClosePublisher{Pub: 7}})
	ch := actionsOf[ServiceChanged](as)
	require.Len(t, ch, 1)
	require.Equal(t, ServiceDisappeared, ch[0].Change)
	require.Equal(t, "t/6", ch[0].Service.Name)
}

// TestUnwatch: the core counts a client's watches; pushes stop after the
// last unwatch, an unwatch without a watch is refused, and the snapshot
// shows the count.
func TestUnwatch(t *testing.T) {
	t.Parallel()
	r := newTestRouter(t, nil, RouterOptions{})
	doAck(t, r, ClientConnected{Conn: 1, PID: 10, Name: "pubs"})
	doAck(t, r, ClientConnected{Conn: 2, PID: 20, Name: "watcher"})
	watches := func() int {
		for _, c := range r.Snapshot().Clients {
			if c.Conn == 2 {
				return c.Watches
			}
		}
		return -1
	}
	req := func(id uint32, q Request) Reply {
		return replyOf(t, doAck(t, r, ClientRequest{Conn: 2, ReqID: id, Req: q}))
	}
	require.Error(t, req(1, UnwatchServices{}).Err, "unwatch without a watch")
	require.NoError(t, req(2, WatchServices{}).Err)
	require.NoError(t, req(3, WatchServices{}).Err)
	require.Equal(t, 2, watches())

	create := func(id uint32, topic string) []Action {
		as := doAck(t, r, ClientRequest{Conn: 1, ReqID: id, Req: CreatePublisher{Topic: topic, Type: typT}})
		require.NoError(t, replyOf(t, as).Err)
		return as
	}
	require.Len(t, actionsOf[ServiceChanged](create(1, "a")), 1)
	require.NoError(t, req(4, UnwatchServices{}).Err)
	require.Equal(t, 1, watches())
	require.Len(t, actionsOf[ServiceChanged](create(2, "b")), 1, "one watch left")
	require.IsType(t, Unwatched{}, req(5, UnwatchServices{}).Result)
	require.Equal(t, 0, watches())
	require.Empty(t, actionsOf[ServiceChanged](create(3, "c")), "no watch left")
	require.Error(t, req(6, UnwatchServices{}).Err)
}
