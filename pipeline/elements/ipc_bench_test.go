package elements_test

import (
	"context"
	"io"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/parallax-ipc/parallax/buffer"
	"github.com/parallax-ipc/parallax/internal/routertest"
	"github.com/parallax-ipc/parallax/pipeline"
	"github.com/parallax-ipc/parallax/pipeline/elements"
)

// tokenSrc produces one buffer (from its negotiated allocator, so from the
// ipcsink's shared pool) per token; it ends when tokens is closed.
type tokenSrc struct {
	tokens <-chan struct{}
	size   int
	alloc  buffer.Allocator
}

func (s *tokenSrc) UseAllocator(a buffer.Allocator) { s.alloc = a }

func (s *tokenSrc) Produce(ctx context.Context) (*buffer.Buffer, error) {
	if _, ok := <-s.tokens; !ok {
		return nil, io.EOF
	}
	b, err := s.alloc.Alloc(ctx, s.size)
	if err == nil {
		b.Bytes()[0] = 1 // touch the chunk, as a producer would
	}
	return b, err
}

// BenchmarkIPCPipeline measures a pipeline cut by ipcsink/ipcsrc: one
// buffer per iteration goes from a source through the router's shared pool
// to a subscribing pipeline, zero copy (copied-bytes is reported, and is 0).
// Both halves run in this process; tests/integration runs them as separate
// processes.
func BenchmarkIPCPipeline(b *testing.B) {
	for _, size := range []int{64 << 10} {
		b.Run("size="+pipeline.FormatBytes(int64(size)), func(b *testing.B) {
			srv := routertest.Start(b, "")
			ctx := context.Background()
			src := &elements.IPCSrc{Topic: "bench", Socket: srv.SocketPath()}
			var rx pipeline.Graph
			require.NoError(b, rx.Add("src", src))
			require.NoError(b, rx.Add("sink", &elements.FakeSink{}))
			require.NoError(b, rx.Chain("src", "sink"))
			rxp, err := pipeline.New(&rx, pipeline.Options{})
			require.NoError(b, err)
			require.NoError(b, rxp.Start(ctx))

			tokens := make(chan struct{}, 64)
			sink := &elements.IPCSink{Topic: "bench", Socket: srv.SocketPath(), WaitSubscribers: 1, BlockTimeout: time.Minute}
			var tx pipeline.Graph
			require.NoError(b, tx.Add("src", &tokenSrc{tokens: tokens, size: size}))
			require.NoError(b, tx.Add("sink", sink))
			require.NoError(b, tx.Chain("src", "sink"))
			txp, err := pipeline.New(&tx, pipeline.Options{})
			require.NoError(b, err)
			require.NoError(b, txp.Start(ctx))

			b.ReportAllocs()
			began := time.Now()
			n := 0
			for b.Loop() {
				tokens <- struct{}{}
				n++
			}
			close(tokens)
			require.NoError(b, txp.Wait())
			for src.Received() < uint64(n) {
				time.Sleep(100 * time.Microsecond) // drain: the subscriber is asynchronous
			}
			elapsed := time.Since(began)
			require.NoError(b, rxp.Stop())
			st := sink.Stats()
			b.ReportMetric(float64(n)/elapsed.Seconds(), "buffers/s")
			b.ReportMetric(float64(n)*float64(size)/1e6/elapsed.Seconds(), "MB/s")
			b.ReportMetric(float64(st.CopiedBytes), "copied-bytes")
		})
	}
}
