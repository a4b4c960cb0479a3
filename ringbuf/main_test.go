package ringbuf_test

import (
	"fmt"
	"os"
	"testing"

	"github.com/parallax-ipc/parallax"
	"github.com/parallax-ipc/parallax/internal/testutil"
	"github.com/parallax-ipc/parallax/ringbuf"
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

// popOK adapts TryPop's result for tests of honest rings: (ref, true) for an
// entry, (nil, false) when empty. Any other error is a bug in the ring.
func popOK(ref parallax.ChunkRef, err error) (parallax.ChunkRef, bool) {
	if err == ringbuf.ErrEmpty {
		return parallax.NilRef, false
	}
	if err != nil {
		panic(fmt.Sprintf("pop from an honest ring: %v", err))
	}
	return ref, true
}
