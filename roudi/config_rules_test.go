package roudi

import (
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/parallax-ipc/parallax/roudi/internal/core"
)

// The core's default rules (used by its own tests) are the embedded
// default configuration's, except the memory model: the core's tests
// default to the shared model (deleted in step 14, design
// docs/design/memory-ownership.md §8), the configuration to owned, whose
// max_message_size 0 stays 0 (no pool bound).
func TestDefaultRulesMatchDefaultConfig(t *testing.T) {
	t.Parallel()
	got := DefaultConfig().rules()
	want := core.DefaultRules()
	require.False(t, want.Memory.Owned)
	want.Memory.Owned = true
	require.Equal(t, want.Limits, got.Limits)
	require.Equal(t, want.Rings, got.Rings)
	require.Equal(t, want.Growth, got.Growth)
	require.Equal(t, want.Memory, got.Memory)
	require.Empty(t, got.Access)
}

func TestRulesCarryAccessAndLimits(t *testing.T) {
	t.Parallel()
	cfg := DefaultConfig()
	cfg.Limits.MaxMessageSize = 1024
	cfg.Access = []AccessRule{{Topic: "cam/*", PublishUIDs: []uint32{1000}, SubscribeGIDs: []uint32{44}}}
	r := cfg.rules()
	require.Equal(t, uint64(1024), r.Limits.MaxMessageSize)
	require.Equal(t, []core.AccessRule{{Topic: "cam/*", PublishUIDs: []uint32{1000}, SubscribeGIDs: []uint32{44}}}, r.Access)
	cfg.Growth = Growth{Enabled: true, MaxSegmentsPerPool: 3, MaxTotalBytes: 2 * GiB, MaxDedicatedBytes: 512 * MiB}
	require.Equal(t, core.Growth{Enabled: true, MaxSegmentsPerPool: 3, MaxTotalBytes: 2 << 30, MaxDedicatedBytes: 512 << 20}, cfg.rules().Growth)
	cfg.Access[0].PublishUIDs[0] = 1 // the rules are a copy
	require.Equal(t, uint32(1000), r.Access[0].PublishUIDs[0])
	require.NoError(t, r.Validate())
}
