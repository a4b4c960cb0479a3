package core

import (
	"testing"

	"github.com/stretchr/testify/require"
)

// TestTickAllocatesNothing: a tick, with handshake deadlines and
// quarantined regions pending but not due, allocates nothing (it used to
// sort the pending connections on every tick). Not parallel: AllocsPerRun
// counts the whole process's allocations.
func TestTickAllocatesNothing(t *testing.T) {
	r := newTestRouter(t, nil, RouterOptions{HelloTimeout: 1 << 30, Quarantine: 1 << 30})
	for c := range ConnID(100) {
		r.Step(ConnAccepted{Conn: 1000 + c})
	}
	// A subscriber whose publisher closes: its ring stays quarantined
	// until the subscriber releases it.
	do(t, r, ClientConnected{Conn: 1, PID: 1})
	do(t, r, ClientConnected{Conn: 2, PID: 2})
	require.NoError(t, replyOf(t, do(t, r, ClientRequest{Conn: 1, ReqID: 1, Req: CreateSubscriber{Topic: "a", Type: typT}})).Err)
	require.NoError(t, replyOf(t, do(t, r, ClientRequest{Conn: 2, ReqID: 1, Req: CreatePublisher{Topic: "a", Type: typT}})).Err)
	do(t, r, ClientDisconnected{Conn: 2})
	require.Equal(t, 1, r.Snapshot().Arena.Quarantined)
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
