package mempool

import (
	"os"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/parallax-ipc/parallax/internal/testutil"
)

func TestMain(m *testing.M) {
	// Initialise the runtime's netpoller (an epoll fd and an eventfd that
	// live for the whole process) before testutil.Main takes its first fd
	// count; otherwise the first pollable file any test opens (the testing
	// framework does) reads as a leak of two fds.
	if r, w, err := os.Pipe(); err == nil {
		r.Close()
		w.Close()
	}
	testutil.Main(m)
}

// newPool formats a pool over fresh heap regions.
func newPool(t testing.TB, id uint16, c Class) *Pool {
	t.Helper()
	p, err := Format(HeapRegion(MgmtSize(c)), id, c)
	require.NoError(t, err)
	require.NoError(t, p.SetPayload(HeapRegion(c.PayloadSize())))
	return p
}
