package core

import (
	"testing"

	"github.com/stretchr/testify/require"
)

// TestTickAllocatesNothing: a tick, with handshake deadlines pending but
// not due and a removed connection waiting for its release, allocates
// nothing (it used to sort the pending connections on every tick). Not parallel: AllocsPerRun
// counts the whole process's allocations.
func TestTickAllocatesNothing(t *testing.T) {
	r := newTestRouter(t, nil, RouterOptions{HelloTimeout: 1 << 30})
	for c := range ConnID(100) {
		r.Step(ConnAccepted{Conn: 1000 + c})
	}
	// A subscriber whose publisher's client disconnects: its connection
	// waits for the subscriber's release.
	doAck(t, r, ClientConnected{Conn: 1, PID: 1})
	doAck(t, r, ClientConnected{Conn: 2, PID: 2})
	require.NoError(t, replyOf(t, doAck(t, r, ClientRequest{Conn: 1, ReqID: 1, Req: CreateSubscriber{Topic: "a", Type: typT}})).Err)
	require.NoError(t, replyOf(t, doAck(t, r, ClientRequest{Conn: 2, ReqID: 1, Req: CreatePublisher{Topic: "a", Type: typT}})).Err)
	doAck(t, r, ClientDisconnected{Conn: 2})
	require.Len(t, r.Memory().Connections, 1, "the removed connection waits for its release")
	_, ok := r.NextTick()
	require.True(t, ok, "timed work is pending")
	allocs := testing.AllocsPerRun(1000, func() {
		r.Step(Tick{})
		r.Step(Tick{N: 3})
		_, _ = r.NextTick()
	})
	require.Zero(t, allocs, "allocations per tick")
	require.Empty(t, r.Ready(), "nothing was due")
}
