package roudi

import (
	"errors"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/parallax-ipc/parallax/roudi/internal/core"
)

func TestConfigMemoryDefaultsToOwned(t *testing.T) {
	t.Parallel()
	c := DefaultConfig()
	require.Equal(t, ModelOwned, c.Memory.Model)
	require.True(t, c.rules().Memory.Owned)
	// A config that names only other keys keeps the default model.
	c, err := ParseConfig([]byte("[rings]\ndefault_capacity = 64\n"))
	require.NoError(t, err)
	require.Equal(t, ModelOwned, c.Memory.Model)
	// The shared model stays selectable.
	c, err = ParseConfig([]byte("[memory]\nmodel = \"shared\"\n"))
	require.NoError(t, err)
	require.NoError(t, c.Validate())
	require.False(t, c.rules().Memory.Owned)
}

func TestConfigMemoryOwned(t *testing.T) {
	t.Parallel()
	c, err := ParseConfig([]byte(`
[memory]
model = "owned"
[publishers]
default_max_payload = "1KiB"
hugepages = "always"
[limits]
max_publisher_bytes = "16MiB"
max_shared_bytes = "64MiB"
max_segments_per_publisher = 8
`))
	require.NoError(t, err)
	require.NoError(t, c.Validate())
	m := c.rules().Memory
	require.True(t, m.Owned)
	require.Equal(t, uint32(1024), m.DefaultMaxPayload)
	require.Equal(t, core.HugeAlways, m.Hugepages)
	require.Equal(t, uint64(16<<20), m.MaxPublisherBytes)
	require.Equal(t, uint64(64<<20), m.MaxSharedBytes)
	require.Equal(t, 8, m.MaxSegmentsPerPublisher)
	require.NoError(t, c.rules().Validate())
}

func TestConfigMemoryErrorsNameKeys(t *testing.T) {
	t.Parallel()
	c, err := ParseConfig([]byte(`
[memory]
model = "private"
[publishers]
default_max_payload = 100
default_max_loans = 0
default_max_held = -1
connection_budget = 64
hugepages = "1G"
[limits]
max_publisher_bytes = "2GiB"
max_shared_bytes = "1GiB"
max_segments_per_publisher = 5000
`))
	require.NoError(t, err)
	err = c.Validate()
	var keys []string
	for _, e := range err.(interface{ Unwrap() []error }).Unwrap() {
		var ce *ConfigError
		require.True(t, errors.As(e, &ce), "%v", e)
		keys = append(keys, ce.Key)
	}
	require.ElementsMatch(t, []string{"memory.model", "publishers.default_max_payload", "publishers.default_max_loans",
		"publishers.default_max_held", "publishers.connection_budget", "publishers.hugepages",
		"limits.max_shared_bytes", "limits.max_segments_per_publisher"}, keys)
}

// The shared model's pools do not bound the owned model's message size:
// max_message_size 0 is no bound there, the largest pool chunk in the
// shared model; a set bound above the largest pool is valid in owned.
func TestConfigMaxMessageSizeByModel(t *testing.T) {
	t.Parallel()
	const pools = "[[pools]]\nchunk_size = \"256B\"\ncount = 4\nhugepages = \"never\"\n"
	c, err := ParseConfig([]byte(pools))
	require.NoError(t, err)
	require.NoError(t, c.Validate())
	require.Zero(t, c.rules().Limits.MaxMessageSize, "owned: no pool bound")
	c, err = ParseConfig([]byte(pools + "[limits]\nmax_message_size = \"8MiB\"\n"))
	require.NoError(t, err)
	require.NoError(t, c.Validate())
	require.Equal(t, uint64(8<<20), c.rules().Limits.MaxMessageSize)
	c, err = ParseConfig([]byte(pools + "[memory]\nmodel = \"shared\"\n"))
	require.NoError(t, err)
	require.NoError(t, c.Validate())
	require.Equal(t, uint64(256), c.rules().Limits.MaxMessageSize, "shared: the largest pool chunk")
	c, err = ParseConfig([]byte(pools + "[memory]\nmodel = \"shared\"\n[limits]\nmax_message_size = \"8MiB\"\n"))
	require.NoError(t, err)
	require.Error(t, c.Validate())
}
