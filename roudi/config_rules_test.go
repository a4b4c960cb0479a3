package roudi

import (
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/parallax-ipc/parallax/roudi/internal/core"
)

// The core's default rules (used by its own tests) are the embedded
// default configuration's.
func TestDefaultRulesMatchDefaultConfig(t *testing.T) {
	t.Parallel()
	got := DefaultConfig().rules()
	want := core.DefaultRules()
	require.Equal(t, want.Limits, got.Limits)
	require.Equal(t, want.Rings, got.Rings)
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
	cfg.Access[0].PublishUIDs[0] = 1 // the rules are a copy
	require.Equal(t, uint32(1000), r.Access[0].PublishUIDs[0])
	require.NoError(t, r.Validate())
}
