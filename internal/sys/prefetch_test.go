package sys

import (
	"bytes"
	"testing"

	"github.com/stretchr/testify/require"
)

func TestPrefetchWChangesNothing(t *testing.T) {
	t.Parallel()
	b := bytes.Repeat([]byte{0xA5}, 256)
	for off := range len(b) {
		PrefetchW(b[off:])
	}
	require.Equal(t, bytes.Repeat([]byte{0xA5}, 256), b, "a prefetch hint wrote memory")
	// A hint never faults: an empty slice (nil pointer) is fine.
	PrefetchW(nil)
	PrefetchW(b[len(b):])
}
