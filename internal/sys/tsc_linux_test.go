//go:build linux

package sys

import (
	"os"
	"runtime"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"golang.org/x/sys/unix"
)

// TestUnixNanoOnEveryCPU runs past the warm-up on each processor in turn
// and checks the counter clock's readings against time.Now there, and
// that the counter served readings on every processor.
func TestUnixNanoOnEveryCPU(t *testing.T) {
	if !useTSC {
		t.Skip("no invariant TSC read by the kernel's vDSO clock: UnixNano reads the monotonic clock")
	}
	runtime.LockOSThread()
	cpus, restore := onlineCPUs(t)
	defer func() {
		// Unlocked only once all processors are allowed again: a thread
		// left pinned is not handed back to the runtime (it exits).
		if restore() == nil {
			runtime.UnlockOSThread()
		}
	}()
	for _, cpu := range cpus {
		pinThread(t, cpu)
		served := 0
		deadline := time.Now().Add(3 * tscWarmup)
		for n := 0; n < 1000 || time.Now().Before(deadline); n++ {
			before := time.Now().UnixNano()
			got, ok := tscUnixNano()
			after := time.Now().UnixNano()
			if !ok {
				continue
			}
			served++
			const slack = int64(50 * time.Microsecond)
			require.GreaterOrEqual(t, got, before-slack, "cpu %d: the counter clock before time.Now", cpu)
			require.LessOrEqual(t, got, after+slack, "cpu %d: the counter clock after time.Now", cpu)
		}
		require.NotZero(t, served, "cpu %d: the counter clock served no reading in %v", cpu, 3*tscWarmup)
	}
	require.False(t, tscClock.off.Load(), "the counter clock turned itself off")
}

// onlineCPUs returns the processors this thread may run on and a function
// that gives it all of them back.
func onlineCPUs(t *testing.T) ([]int, func() error) {
	var set unix.CPUSet
	require.NoError(t, unix.SchedGetaffinity(0, &set))
	var cpus []int
	for i := range 1024 {
		if set.IsSet(i) {
			cpus = append(cpus, i)
		}
	}
	require.NotEmpty(t, cpus)
	return cpus, func() error { return unix.SchedSetaffinity(0, &set) }
}

// pinThread makes the calling (locked) thread run on cpu only.
func pinThread(t *testing.T, cpu int) {
	var set unix.CPUSet
	set.Set(cpu)
	require.NoError(t, unix.SchedSetaffinity(0, &set), "pin to cpu %d", cpu)
}

// TestTSCClocksource checks the clocksource gate against what this kernel
// says.
func TestTSCClocksource(t *testing.T) {
	t.Parallel()
	b, err := os.ReadFile("/sys/devices/system/clocksource/clocksource0/current_clocksource")
	if err != nil {
		t.Skipf("no clocksource in sysfs: %v", err)
	}
	cs := strings.TrimSpace(string(b))
	require.Equal(t, slices.Contains(tscClocksources, cs), tscClocksource(), "clocksource %q", cs)
	if !slices.Contains(tscClocksources, cs) {
		require.False(t, useTSC, "clocksource %q does not read the counter", cs)
	}
}
