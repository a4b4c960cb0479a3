//go:build integration

package integration

import (
	"os"
	"strconv"
	"testing"
)

// ownedFramesConfig: the owned model with loans up to 16 MiB (dedicated
// segments).
const ownedFramesConfig = `
[limits]
max_message_size = "16MiB"
max_queue_capacity = 4096
`

// TestOwnedFrames8MiB streams 8 MiB frames between two processes through
// an owned router: every loan is larger than the publisher's 4 KiB class,
// so it runs on a dedicated segment that the publisher keeps and reuses
// (design step 9: no per-run limit). The subscriber checks every byte.
// 200 frames by default (≈1.6 GiB, under -race); PARALLAX_FRAMES=10000 runs
// the design's 10 000.
func TestOwnedFrames8MiB(t *testing.T) {
	t.Parallel()
	n := 200
	if v, err := strconv.Atoi(os.Getenv("PARALLAX_FRAMES")); err == nil && v > 0 {
		n = v
	}
	r := startRouterWith(t, ownedFramesConfig)
	streamScenario(t, r, "frames", n, 8<<20)
}
