//go:build linux

package bench_test

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"os"

	"github.com/parallax-ipc/parallax/roudi"
)

// serveRouterChild is the body of a router child process: it starts a
// router on cfg (logs discarded), prints "ready", serves until stdin
// closes and stops it. Errors go to stderr prefixed with name; the result
// is the exit code.
func serveRouterChild(name string, cfg *roudi.Config) int {
	srv, err := roudi.Start(context.Background(), cfg, roudi.Options{Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
	if err != nil {
		fmt.Fprintln(os.Stderr, name+":", err)
		return 1
	}
	fmt.Println("ready")
	untilStdinCloses()
	if err := srv.Close(); err != nil {
		fmt.Fprintln(os.Stderr, name+":", err)
		return 1
	}
	return 0
}
