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
	// A config that names only other keys keeps the default model.
	c, err := ParseConfig([]byte("[rings]\ndefault_capacity = 64\n"))
	require.NoError(t, err)
	require.Equal(t, ModelOwned, c.Memory.Model)
	// Naming the only model is allowed.
	c, err = ParseConfig([]byte("[memory]\nmodel = \"owned\"\n"))
	require.NoError(t, err)
	require.NoError(t, c.Validate())
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
	require.ElementsMatch(t, []string{"publishers.default_max_payload", "publishers.default_max_loans",
		"publishers.default_max_held", "publishers.connection_budget", "publishers.hugepages",
		"limits.max_shared_bytes", "limits.max_segments_per_publisher"}, keys)
}

// max_message_size 0 is no bound beyond max_publisher_bytes; a set bound
// is kept.
func TestConfigMaxMessageSize(t *testing.T) {
	t.Parallel()
	c, err := ParseConfig(nil)
	require.NoError(t, err)
	require.NoError(t, c.Validate())
	require.Zero(t, c.rules().Limits.MaxMessageSize, "no bound")
	c, err = ParseConfig([]byte("[limits]\nmax_message_size = \"8MiB\"\n"))
	require.NoError(t, err)
	require.NoError(t, c.Validate())
	require.Equal(t, uint64(8<<20), c.rules().Limits.MaxMessageSize)
}

// TestConfigRemovedKeys: a config written for the removed shared model is
// refused, each key with an error that names it and says what replaces it.
func TestConfigRemovedKeys(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct{ toml, key, hint string }{
		{"[[pools]]\nchunk_size = \"4KiB\"\ncount = 8\n", "pools", "[publishers]"},
		{"[growth]\nenabled = true\n", "growth", "max_publisher_bytes"},
		{"[limits]\nmax_holds = 4096\n", "limits.max_holds", "default_max_loans"},
		{"[memory]\nmodel = \"shared\"\n", "memory.model", "[publishers]"},
	} {
		_, err := ParseConfig([]byte(tc.toml))
		require.ErrorIs(t, err, ErrRemovedKey, tc.key)
		var ce *ConfigError
		require.ErrorAs(t, err, &ce)
		require.Equal(t, tc.key, ce.Key)
		require.Contains(t, err.Error(), tc.hint)
	}
	// All at once: one error per key.
	_, err := ParseConfig([]byte("[[pools]]\ncount = 1\n[growth]\nenabled = false\n[limits]\nmax_holds = 1\n"))
	require.Len(t, unjoin(errors.Unwrap(err)), 3)
}
