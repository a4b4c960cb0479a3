package sys

import (
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

func TestUnixNanoFollowsWallClock(t *testing.T) {
	t.Parallel()
	for range 1000 {
		before := time.Now().UnixNano()
		got := UnixNano()
		after := time.Now().UnixNano()
		// The offset is measured between two monotonic reads around one
		// time.Now; allow that window plus a little drift.
		const slack = int64(50 * time.Microsecond)
		require.GreaterOrEqual(t, got, before-slack, "UnixNano before time.Now")
		require.LessOrEqual(t, got, after+slack, "UnixNano after time.Now")
	}
}

func TestUnixNanoRecalibrates(t *testing.T) {
	// Not parallel: it rewinds the shared calibration.
	unixClock.at.Store(nanotime() - int64(recalibrate) - 1)
	unixClock.offset.Store(-int64(time.Hour)) // a stale offset an hour off
	got := monoUnixNano()
	require.InDelta(t, float64(time.Now().UnixNano()), float64(got), float64(time.Second), "a calibration older than %v is not used", recalibrate)
}

func BenchmarkUnixNano(b *testing.B) {
	for b.Loop() {
		_ = UnixNano()
	}
}

func BenchmarkTimeNowUnixNano(b *testing.B) {
	for b.Loop() {
		_ = time.Now().UnixNano()
	}
}
