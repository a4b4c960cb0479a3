//go:build linux

package sys_test

import (
	"os"
	"testing"

	"github.com/parallax-ipc/parallax/internal/testutil"
)

func TestMain(m *testing.M) {
	testutil.ChildMain(map[string]func([]string) int{
		// "block" waits until its stdin closes: a peer to watch via pidfd.
		"block": func([]string) int {
			var b [1]byte
			_, _ = os.Stdin.Read(b[:])
			return 0
		},
	})
	testutil.Main(m)
}
