package roudi

import (
	"net"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// TestIdleServerSleeps: a router with no client schedules no wakeup (it
// used to tick 100 times a second); a connection that leaves a deadline
// pending (no handshake) arms its timer (the core's handshake backstop),
// and the handshake deadline is enforced. It takes helloTimeout (5 s).
func TestIdleServerSleeps(t *testing.T) {
	t.Parallel()
	srv, _ := startServer(t, filepath.Join(t.TempDir(), "s.sock"))
	before, armsBefore := srv.clock.wakeups.Load(), srv.clock.arms.Load()
	// Not a timing assertion: over any period, an idle router must not
	// wake at all. 300 ms is 30 ticks of the old ticker.
	time.Sleep(300 * time.Millisecond)
	require.Equal(t, before, srv.clock.wakeups.Load(), "timer wakeups of an idle router")
	require.Equal(t, armsBefore, srv.clock.arms.Load(), "timer settings of an idle router")

	uc, err := net.DialUnix("unixpacket", nil, &net.UnixAddr{Name: srv.SocketPath(), Net: "unixpacket"})
	require.NoError(t, err)
	defer uc.Close()
	// No Hello: the handshake deadline (helloTimeout) closes it.
	require.NoError(t, uc.SetReadDeadline(time.Now().Add(20*time.Second)))
	_, err = uc.Read(make([]byte, 64))
	require.Error(t, err, "the router closes a connection without handshake")
	require.NotErrorIs(t, err, os.ErrDeadlineExceeded, "closed by the router, not by the read deadline")
	require.Greater(t, srv.clock.arms.Load(), armsBefore, "the pending handshake deadline armed the router's timer")
}
