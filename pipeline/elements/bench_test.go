package elements_test

import (
	"context"
	"fmt"
	"runtime"
	"testing"
	"time"

	"github.com/parallax-ipc/parallax/buffer"
	"github.com/parallax-ipc/parallax/mempool"
	"github.com/parallax-ipc/parallax/pipeline"
	"github.com/parallax-ipc/parallax/pipeline/elements"
)

// BenchmarkTestsrcIdentityFakesink runs in-process
// "testsrc ! identity ! fakesink": one op is one pipeline run of a batch of
// buffers from start to end of stream. buffers/s is the throughput;
// allocs/buffer includes the per-run setup (goroutines, channels) spread
// over the batch, so it shows the steady state is allocation-free.
func BenchmarkTestsrcIdentityFakesink(b *testing.B) {
	const batch = 100_000
	pool, err := buffer.NewPool(buffer.PoolOptions{Classes: []mempool.Class{{ChunkSize: 64, Count: 1024}, {ChunkSize: 4096, Count: 1024}}})
	must(b, err)
	defer pool.Close()
	for _, size := range []int{64, 4096} {
		for _, capacity := range []int{16, 256} {
			b.Run(fmt.Sprintf("size=%d/link-capacity=%d", size, capacity), func(b *testing.B) {
				b.ReportAllocs()
				var ms0, ms1 runtime.MemStats
				runtime.ReadMemStats(&ms0)
				var busy time.Duration
				runs := 0
				for b.Loop() {
					src := &elements.TestSrc{Size: size, Pattern: elements.PatternNone, NumBuffers: batch}
					sink := &elements.FakeSink{}
					var g pipeline.Graph
					must(b, g.Add("src", src))
					must(b, g.Add("id", &elements.Identity{}))
					must(b, g.Add("sink", sink))
					must(b, g.LinkWith("src", "id", pipeline.LinkOptions{Capacity: capacity}))
					must(b, g.LinkWith("id", "sink", pipeline.LinkOptions{Capacity: capacity}))
					start := time.Now()
					must(b, pipeline.Run(context.Background(), &g, pipeline.Options{Allocator: pool}))
					busy += time.Since(start)
					runs++
					if sink.Buffers() != batch {
						b.Fatalf("sink got %d buffers, want %d", sink.Buffers(), batch)
					}
				}
				runtime.ReadMemStats(&ms1)
				b.ReportMetric(float64(runs*batch)/busy.Seconds(), "buffers/s")
				b.ReportMetric(float64(ms1.Mallocs-ms0.Mallocs)/float64(runs*batch), "allocs/buffer")
				if st := pool.Stats(); st.HeapFallbacks != 0 {
					b.Fatalf("pool fell back to the heap %d times", st.HeapFallbacks)
				}
			})
		}
	}
}

func must(tb testing.TB, err error) {
	tb.Helper()
	if err != nil {
		tb.Fatal(err)
	}
}
