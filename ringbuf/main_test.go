package ringbuf_test

import (
	"os"
	"testing"

	"github.com/parallax-ipc/parallax/internal/testutil"
)

func TestMain(m *testing.M) {
	testutil.ChildMain(map[string]func([]string) int{
		"producer": producerChild,
	})
	// The Go runtime opens its netpoller fds (epoll + eventfd) lazily, on
	// the first pollable file, which the testing package creates during the
	// run. Open them before testutil.Main takes its fd snapshot so they are
	// not reported as a leak.
	if r, w, err := os.Pipe(); err == nil {
		r.Close()
		w.Close()
	}
	testutil.Main(m)
}
