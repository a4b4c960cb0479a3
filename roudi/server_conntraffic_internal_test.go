package roudi

import (
	"path/filepath"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/parallax-ipc/parallax/internal/wire"
)

// TestConnTrafficPruneAmortised: the router does not walk every stored
// connection report on each memory report (O(connections) per report,
// O(clients × connections) per second on the Serve goroutine); it drops
// the reports of ended connections when the map has doubled, so the map
// stays bounded while a report costs amortised O(its own entries).
func TestConnTrafficPruneAmortised(t *testing.T) {
	dir := t.TempDir()
	cfg, err := ParseConfig([]byte("[publishers]\nhugepages = \"never\"\n"))
	require.NoError(t, err)
	cfg.Domain = "ctp" + filepath.Base(dir)
	cfg.Socket = filepath.Join(dir, "r.sock")
	cfg.RuntimeDir = dir
	s, err := New(cfg, Options{Logger: discardLogger()})
	require.NoError(t, err)
	t.Cleanup(func() { _ = s.Close() })
	now := time.Now()
	// Reports of connections the core does not know (they ended after
	// their report was checked): nothing shows them, and they go at the
	// next prune.
	maxLen := 0
	for i := range 10 * minConnTrafficPrune {
		s.recordConnTraffic([]wire.ConnTraffic{{ConnID: uint32(i + 1), Delivered: 1}}, []bool{false}, now)
		maxLen = max(maxLen, len(s.obs.connTraffic))
	}
	require.LessOrEqual(t, maxLen, minConnTrafficPrune+1, "bounded by the prune threshold")
	require.Greater(t, len(s.obs.connTraffic), 1, "not pruned on every report")
}
