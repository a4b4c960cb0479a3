//go:build linux

package procmon

import (
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/parallax-ipc/parallax/internal/sys"
)

// TestEBPFConfirmsExitWithPidfd plays what a router in a child pid
// namespace sees: the number it watches (its namespace's pid of the client)
// is, in the init namespace where the tracer reports, the pid of an
// unrelated process. That process's exit must not be reported while the
// client the pidfd names is alive; the client's own death still is.
func TestEBPFConfirmsExitWithPidfd(t *testing.T) {
	t.Parallel()
	mustHaveEBPF(t)
	var (
		mu     sync.Mutex
		traced = map[int32]bool{}
		seen   = make(chan struct{}, 1)
	)
	stranger, client, sentinel := startChild(t), startChild(t), startChild(t)
	m, err := newEBPF(func(tgid int32, _ uint64) {
		mu.Lock()
		traced[tgid] = true
		mu.Unlock()
		select {
		case seen <- struct{}{}:
		default:
		}
	})
	require.NoError(t, err)
	t.Cleanup(func() { require.NoError(t, m.Close()) })

	// The watch names the stranger's number with the client's pidfd.
	pidfd, err := sys.OpenPidfd(int(client.pid))
	require.NoError(t, err)
	require.NoError(t, m.Watch(stranger.pid, pidfd))

	stranger.kill(t)
	_ = stranger.wait()
	// The tracer handles records in order: once the sentinel's exit has
	// been traced, the stranger's has been handled.
	sentinel.kill(t)
	_ = sentinel.wait()
	waitTraced(t, &mu, traced, seen, sentinel.pid)
	select {
	case ex := <-m.Events():
		t.Fatalf("exit %+v reported while the watched process (pid %d) is alive", ex, client.pid)
	default:
	}

	at := client.kill(t)
	ex := nextExit(t, m)
	require.Equal(t, stranger.pid, ex.PID, "the exit is reported under the watched number")
	require.False(t, ex.At.Before(at.Add(-time.Millisecond)), "exit at %v, client killed at %v", ex.At, at)
	_ = client.wait()
}

// waitTraced waits until the tracer has seen pid's exit.
func waitTraced(t *testing.T, mu *sync.Mutex, traced map[int32]bool, seen <-chan struct{}, pid int32) {
	t.Helper()
	deadline := time.After(eventTimeout)
	for {
		mu.Lock()
		ok := traced[pid]
		mu.Unlock()
		if ok {
			return
		}
		select {
		case <-seen:
		case <-deadline:
			t.Fatalf("exit of pid %d not traced within %v", pid, eventTimeout)
		}
	}
}
