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
			os.Stdin.Read(b[:])
			return 0
		},
	})
	// The Go netpoller opens an epoll fd and an eventfd on first use and
	// keeps them for the life of the process; start it before testutil.Main
	// counts fds so they are not reported as a leak.
	if r, w, err := os.Pipe(); err == nil {
		r.Close()
		w.Close()
	}
	testutil.Main(m)
}
