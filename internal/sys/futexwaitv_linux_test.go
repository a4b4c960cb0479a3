//go:build linux

package sys

import (
	"errors"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// FutexWaitv's absolute deadline comes from the runtime's monotonic clock,
// not a clock_gettime call: a wait on unchanged words must still last its
// timeout (a deadline on another clock's base would end at once or never).
func TestFutexWaitvTimeoutOnMonotonicClock(t *testing.T) {
	t.Parallel()
	var a, b uint32 = 7, 9
	const timeout = 20 * time.Millisecond
	start := time.Now()
	_, err := FutexWaitv([]*uint32{&a, &b}, []uint32{7, 9}, timeout)
	el := time.Since(start)
	if errors.Is(err, ENOSYS) {
		t.Skip("futex_waitv: kernel older than 5.16")
	}
	require.ErrorIs(t, err, ETIMEDOUT)
	require.GreaterOrEqual(t, el, timeout, "FutexWaitv returned before its timeout")
	require.Less(t, el, 10*time.Second, "FutexWaitv overslept its timeout")
}
