package bench_test

import (
	"context"
	"fmt"
	"os"
	"strconv"
	"testing"
	"time"

	"github.com/parallax-ipc/parallax/internal/testutil"
	"github.com/parallax-ipc/parallax/pipeline"
	"github.com/parallax-ipc/parallax/pipeline/elements"
)

// BenchmarkPipelineCrossProcess: `testsrc ! ipcsink` in this process,
// `ipcsrc ! fakesink` in a child process, through a router. One op is one
// buffer; the time runs until the child received the last one. The source
// writes into chunks loaned from the sink's shared pool, so no payload byte
// is copied (copied-bytes reports it).
func BenchmarkPipelineCrossProcess(b *testing.B) {
	for _, size := range []int{64 << 10} {
		b.Run(fmt.Sprintf("size=%d", size), func(b *testing.B) {
			srv := startRouter(b)
			sock := srv.SocketPath()
			n := b.N
			child := testutil.ChildCommand(b, "pipesink", nil, sock, strconv.Itoa(n))
			if err := child.Start(); err != nil {
				b.Fatal(err)
			}
			done := make(chan error, 1)
			go func() { done <- child.Wait() }()
			g, err := pipeline.Launch(fmt.Sprintf("testsrc num-buffers=%d size=%d pattern=counter ! ipcsink topic=pipe socket=%q wait-subscribers=1", n, size, sock), nil)
			if err != nil {
				b.Fatal(err)
			}
			copied0 := elements.IPCCopiedBytes()
			ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
			defer cancel()
			b.ResetTimer()
			start := time.Now()
			if err := pipeline.Run(ctx, g, pipeline.Options{}); err != nil {
				b.Fatal(err)
			}
			select {
			case err := <-done:
				if err != nil {
					b.Fatalf("sink process: %v", err)
				}
			case <-ctx.Done():
				_ = child.Process.Kill() // our own child, by PID
				b.Fatal("sink process did not finish")
			}
			elapsed := time.Since(start)
			b.StopTimer()
			b.ReportMetric(float64(n)/elapsed.Seconds(), "buffers/s")
			b.ReportMetric(float64(n)*float64(size)/elapsed.Seconds()/1e6, "MB/s")
			b.ReportMetric(float64(elements.IPCCopiedBytes()-copied0), "copied-bytes")
		})
	}
}

// pipesinkMain is the child of BenchmarkPipelineCrossProcess:
// `ipcsrc topic=pipe num-buffers=N ! fakesink` against the socket in args.
func pipesinkMain(args []string) int {
	if len(args) != 2 {
		fmt.Fprintln(os.Stderr, "pipesink: want socket and count")
		return 2
	}
	g, err := pipeline.Launch(fmt.Sprintf("ipcsrc topic=pipe socket=%q num-buffers=%s ! fakesink", args[0], args[1]), nil)
	if err != nil {
		fmt.Fprintln(os.Stderr, "pipesink:", err)
		return 1
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	if err := pipeline.Run(ctx, g, pipeline.Options{}); err != nil {
		fmt.Fprintln(os.Stderr, "pipesink:", err)
		return 1
	}
	return 0
}
