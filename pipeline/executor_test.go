package pipeline_test

import (
	"context"
	"errors"
	"io"
	"os"
	"path/filepath"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/parallax-ipc/parallax/buffer"
	"github.com/parallax-ipc/parallax/mempool"
	"github.com/parallax-ipc/parallax/pipeline"
	"github.com/parallax-ipc/parallax/pipeline/elements"
)

func launch(t *testing.T, line string) *pipeline.Graph {
	t.Helper()
	g, err := pipeline.Launch(line, nil)
	require.NoError(t, err)
	return g
}

func stat(p *pipeline.Pipeline, node string) pipeline.NodeStats {
	for _, s := range p.Stats() {
		if s.Name == node {
			return s
		}
	}
	return pipeline.NodeStats{}
}

func TestRunToEOS(t *testing.T) {
	t.Parallel()
	g := launch(t, "testsrc num-buffers=1000 size=1KiB ! tee name=t t. ! queue ! fakesink name=a t. ! identity ! fakesink name=b")
	p, err := pipeline.New(g, pipeline.Options{})
	require.NoError(t, err)
	require.Equal(t, pipeline.StateReady, p.State())
	l := p.Events(1 << 12)
	require.NoError(t, p.Start(context.Background()))
	require.ErrorIs(t, p.Start(context.Background()), pipeline.ErrState)
	require.NoError(t, p.Wait())
	require.Equal(t, pipeline.StateStopped, p.State())
	for _, n := range []string{"a", "b"} {
		require.Equal(t, uint64(1000), stat(p, n).Buffers, n)
	}
	require.Equal(t, uint64(2000), stat(p, "t").Buffers, "a tee counts per output")
	require.Equal(t, uint64(1000*1024), stat(p, "a").Bytes)
	require.Equal(t, uint64(1000), g.Element("a").(*elements.FakeSink).Buffers())

	var kinds []pipeline.EventKind
	finished := map[string]uint64{}
	for e := range l.C { // closed after EventStopped
		kinds = append(kinds, e.Kind)
		if e.Kind == pipeline.EventNodeFinished {
			finished[e.Node] = e.Buffers
		}
	}
	require.Zero(t, l.Lost())
	require.Equal(t, pipeline.EventStateChanged, kinds[0])
	require.Equal(t, pipeline.EventStarted, kinds[1])
	require.Contains(t, kinds, pipeline.EventEOS)
	require.Equal(t, pipeline.EventStopped, kinds[len(kinds)-1])
	require.Equal(t, uint64(1000), finished["b"])
	require.Len(t, finished, 6)
}

func TestErrorNamesNode(t *testing.T) {
	t.Parallel()
	g := launch(t, "testsrc ! identity name=bad error-after=10 ! fakesink")
	p, err := pipeline.New(g, pipeline.Options{})
	require.NoError(t, err)
	l := p.Events(1 << 10)
	require.NoError(t, p.Start(context.Background()))
	err = p.Wait()
	var ne *pipeline.NodeError
	require.True(t, errors.As(err, &ne), "%v", err)
	require.Equal(t, "bad", ne.Node)
	require.ErrorContains(t, err, `node "bad": error-after`)
	var sawErr bool
	for e := range l.C {
		if e.Kind == pipeline.EventError {
			require.Equal(t, "bad", e.Node)
			sawErr = true
		}
		require.NotEqual(t, pipeline.EventEOS, e.Kind)
	}
	require.True(t, sawErr)
}

func TestCancelAndStop(t *testing.T) {
	t.Parallel()
	t.Run("cancel", func(t *testing.T) {
		t.Parallel()
		ctx, cancel := context.WithCancel(context.Background())
		p, err := pipeline.New(launch(t, "testsrc ! queue ! fakesink"), pipeline.Options{})
		require.NoError(t, err)
		l := p.Events(1 << 12)
		require.NoError(t, p.Start(ctx))
		waitEvent(t, l, pipeline.EventBuffers)
		cancel()
		require.ErrorIs(t, p.Wait(), context.Canceled)
	})
	t.Run("stop", func(t *testing.T) {
		t.Parallel()
		p, err := pipeline.New(launch(t, "testsrc rate=1000 ! fakesink delay=1ms"), pipeline.Options{ProgressEvery: 1})
		require.NoError(t, err)
		require.ErrorIs(t, p.Stop(), pipeline.ErrState)
		l := p.Events(1 << 12)
		require.NoError(t, p.Start(context.Background()))
		waitEvent(t, l, pipeline.EventBuffers)
		require.NoError(t, p.Stop())
		require.Equal(t, pipeline.StateStopped, p.State())
		<-p.Done()
	})
}

func waitEvent(t *testing.T, l *pipeline.Listener, k pipeline.EventKind) {
	t.Helper()
	timeout := time.After(10 * time.Second)
	for {
		select {
		case e, ok := <-l.C:
			require.True(t, ok, "events ended before %v", k)
			if e.Kind == k {
				return
			}
		case <-timeout:
			t.Fatalf("no %v event", k)
		}
	}
}

func TestSinkFinishesEarly(t *testing.T) {
	t.Parallel()
	// An unlimited source stops once every sink has finished.
	p, err := pipeline.New(launch(t, "testsrc ! tee name=t t. ! fakesink num-buffers=50 t. ! fakesink num-buffers=100"), pipeline.Options{})
	require.NoError(t, err)
	require.NoError(t, p.Start(context.Background()))
	require.NoError(t, p.Wait())
}

// gatedSink blocks in Consume until a token arrives on gate, and checks
// that its source never runs more than limit buffers ahead.
type gatedSink struct {
	gate     chan struct{}
	src      *countingSrc
	got      atomic.Int64
	limit    int64
	violated atomic.Bool
}

func (s *gatedSink) Consume(ctx context.Context, b *buffer.Buffer) error {
	b.Release()
	select {
	case <-s.gate:
	case <-ctx.Done():
		return ctx.Err()
	}
	if s.src.n.Load()-s.got.Add(1) > s.limit {
		s.violated.Store(true)
	}
	return nil
}

type countingSrc struct {
	n   atomic.Int64
	max int64
}

func (s *countingSrc) Produce(context.Context) (*buffer.Buffer, error) {
	if s.n.Load() >= s.max {
		return nil, io.EOF
	}
	s.n.Add(1)
	return buffer.New(make([]byte, 8)), nil
}

func TestBackpressure(t *testing.T) {
	t.Parallel()
	src := &countingSrc{max: 200}
	// In flight at most: capacity 2 in the link, 1 in the sink, 1 in the
	// source's blocked push.
	sink := &gatedSink{gate: make(chan struct{}), src: src, limit: 4}
	var g pipeline.Graph
	require.NoError(t, g.Add("src", src))
	require.NoError(t, g.Add("sink", sink))
	require.NoError(t, g.LinkWith("src", "sink", pipeline.LinkOptions{Capacity: 2}))
	p, err := pipeline.New(&g, pipeline.Options{})
	require.NoError(t, err)
	require.NoError(t, p.Start(context.Background()))
	require.Eventually(t, func() bool { return src.n.Load() == 4 }, 10*time.Second, time.Millisecond)
	for range 200 {
		sink.gate <- struct{}{}
	}
	require.NoError(t, p.Wait())
	require.False(t, sink.violated.Load(), "source ran ahead of the sink beyond the link capacity")
	require.Equal(t, int64(200), sink.got.Load())
}

func TestSlowListenerLosesEvents(t *testing.T) {
	t.Parallel()
	p, err := pipeline.New(launch(t, "testsrc num-buffers=3000 size=64 ! identity ! fakesink"), pipeline.Options{ProgressEvery: 1})
	require.NoError(t, err)
	slow := p.Events(1) // never read while running
	fast := p.Events(1 << 15)
	require.NoError(t, p.Start(context.Background()))
	n := 0
	for range fast.C {
		n++
	}
	require.NoError(t, p.Wait())
	require.Zero(t, fast.Lost())
	require.Greater(t, n, 9000) // 3 nodes x 3000 buffers of progress, plus life-cycle events
	require.Greater(t, slow.Lost(), uint64(9000))
	got := 0
	for range slow.C {
		got++
	}
	require.Equal(t, 1, got, "a full listener keeps the first event")
	require.Equal(t, uint64(n-1), slow.Lost())
}

func TestLeakyQueue(t *testing.T) {
	t.Parallel()
	for _, leaky := range []string{elements.LeakyUpstream, elements.LeakyDownstream} {
		t.Run(leaky, func(t *testing.T) {
			t.Parallel()
			g := launch(t, "testsrc num-buffers=300 size=16 ! queue name=q max-size-buffers=4 leaky="+leaky+" ! fakesink name=s delay=200us")
			require.NoError(t, pipeline.Run(context.Background(), g, pipeline.Options{}))
			q := g.Element("q").(*elements.Queue)
			s := g.Element("s").(*elements.FakeSink)
			require.Equal(t, uint64(300), q.Dropped()+s.Buffers())
			require.NotZero(t, q.Dropped())
		})
	}
}

// providerSink provides its own allocator to upstream and counts the
// buffers that came from it.
type providerSink struct {
	pool *buffer.Pool
	mine atomic.Int64
}

func (s *providerSink) ProvideAllocator() buffer.Allocator { return s.pool }

func (s *providerSink) Consume(_ context.Context, b *buffer.Buffer) error {
	if b.Memory().Owner() == buffer.Owner(s.pool) {
		s.mine.Add(1)
	}
	b.Release()
	return nil
}

func TestAllocationNegotiation(t *testing.T) {
	t.Parallel()
	pool, err := buffer.NewPool(buffer.PoolOptions{Classes: []mempool.Class{{ChunkSize: 1024, Count: 64}}, Block: true})
	require.NoError(t, err)
	defer func() { require.NoError(t, pool.Close()) }()
	sink := &providerSink{pool: pool}
	var g pipeline.Graph
	require.NoError(t, g.Add("src", &elements.TestSrc{Size: 1000, NumBuffers: 500}))
	require.NoError(t, g.Add("id", &elements.Identity{}))
	require.NoError(t, g.Add("q", &elements.Queue{}))
	require.NoError(t, g.Add("t", &elements.Tee{}))
	require.NoError(t, g.Add("other", &elements.FakeSink{}))
	require.NoError(t, g.Add("sink", sink))
	require.NoError(t, g.Chain("src", "id", "q", "t", "sink"))
	require.NoError(t, g.Link("t", "other"))
	p, err := pipeline.New(&g, pipeline.Options{})
	require.NoError(t, err)
	require.NoError(t, p.Start(context.Background()))
	require.Same(t, pool, p.Allocator("src"))
	require.Same(t, pool, p.Allocator("q"))
	require.NoError(t, p.Wait())
	require.Equal(t, int64(500), sink.mine.Load())
	require.Zero(t, pool.Stats().HeapFallbacks)
}

func TestChecksumFilesAndFunnel(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	out := filepath.Join(dir, "out.bin")
	g := launch(t, "testsrc num-buffers=100 size=3000 pattern=random ! tee name=t t. ! checksum name=c1 ! filesink location="+out+" t. ! checksum name=c2")
	require.NoError(t, pipeline.Run(context.Background(), g, pipeline.Options{}))
	r1 := g.Element("c1").(*elements.Checksum).Result()
	r2 := g.Element("c2").(*elements.Checksum).Result()
	require.Equal(t, r1, r2)
	require.Equal(t, uint64(300000), r1.Bytes)

	// Reading the file back in other block sizes gives the same stream.
	g2 := launch(t, `filesrc location="`+out+`" blocksize=7KiB ! queue ! checksum name=c`)
	p, err := pipeline.New(g2, pipeline.Options{})
	require.NoError(t, err)
	l := p.Events(1 << 10)
	require.NoError(t, p.Start(context.Background()))
	require.NoError(t, p.Wait())
	var posted any
	for e := range l.C {
		if e.Kind == pipeline.EventCustom && e.Name == elements.ChecksumEvent {
			posted = e.Value
		}
	}
	r3 := posted.(elements.ChecksumResult)
	require.Equal(t, r1.Sum, r3.Sum)
	require.Equal(t, r1.Bytes, r3.Bytes)

	// Two sources into a funnel: every buffer arrives.
	g3 := launch(t, "testsrc num-buffers=100 ! f.  testsrc num-buffers=50 ! f.  funnel name=f ! ratelimit rate=100000 ! fakesink name=s")
	require.NoError(t, pipeline.Run(context.Background(), g3, pipeline.Options{}))
	require.Equal(t, uint64(150), g3.Element("s").(*elements.FakeSink).Buffers())
}

func TestStartFailureNamesNodeAndCloses(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	g := launch(t, "filesrc name=in location="+filepath.Join(dir, "missing")+" ! filesink name=out location="+filepath.Join(dir, "o"))
	err := pipeline.Run(context.Background(), g, pipeline.Options{})
	var ne *pipeline.NodeError
	require.True(t, errors.As(err, &ne))
	require.Equal(t, "in", ne.Node)
	require.ErrorIs(t, err, os.ErrNotExist)
}
