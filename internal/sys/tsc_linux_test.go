//go:build linux

package sys

import (
	"runtime"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"golang.org/x/sys/unix"
)

// TestUnixNanoOnEveryCPU runs past the warm-up on each processor in turn
// and checks the counter clock against time.Now there: a counter that is
// not synchronized between processors shows here.
func TestUnixNanoOnEveryCPU(t *testing.T) {
	if !useTSC {
		t.Skip("no invariant TSC: UnixNano reads the monotonic clock")
	}
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	cpus, restore := onlineCPUs(t)
	defer restore() // before the thread is unlocked: no pinned thread goes back to the runtime
	for _, cpu := range cpus {
		pinThread(t, cpu)
		deadline := time.Now().Add(3 * tscWarmup)
		for n := 0; n < 1000 || time.Now().Before(deadline); n++ {
			before := time.Now().UnixNano()
			got := UnixNano()
			after := time.Now().UnixNano()
			const slack = int64(50 * time.Microsecond)
			require.GreaterOrEqual(t, got, before-slack, "cpu %d: UnixNano before time.Now", cpu)
			require.LessOrEqual(t, got, after+slack, "cpu %d: UnixNano after time.Now", cpu)
		}
	}
	if tscClock.off.Load() {
		t.Fatalf("the counter clock turned itself off after %d resets", tscClock.resets.Load())
	}
	require.NotZero(t, tscClock.mult.Load(), "the counter clock has a slope after %v", 3*tscWarmup)
}

// onlineCPUs returns the processors this thread may run on and a function
// that gives it all of them back.
func onlineCPUs(t *testing.T) ([]int, func()) {
	var set unix.CPUSet
	require.NoError(t, unix.SchedGetaffinity(0, &set))
	var cpus []int
	for i := range 1024 {
		if set.IsSet(i) {
			cpus = append(cpus, i)
		}
	}
	require.NotEmpty(t, cpus)
	return cpus, func() { _ = unix.SchedSetaffinity(0, &set) }
}

// pinThread makes the calling (locked) thread run on cpu only.
func pinThread(t *testing.T, cpu int) {
	var set unix.CPUSet
	set.Set(cpu)
	require.NoError(t, unix.SchedSetaffinity(0, &set), "pin to cpu %d", cpu)
}
