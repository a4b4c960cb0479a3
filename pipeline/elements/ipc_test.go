package elements_test

import (
	"context"
	"errors"
	"fmt"
	"io"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/parallax-ipc/parallax"
	"github.com/parallax-ipc/parallax/buffer"
	"github.com/parallax-ipc/parallax/internal/routertest"
	"github.com/parallax-ipc/parallax/pipeline"
	"github.com/parallax-ipc/parallax/pipeline/elements"
)

// runIPC runs "src ! checksum ! ipcsink" and "ipcsrc ! checksum ! fakesink"
// as two pipelines against one router and returns both checksums and the
// sink's stats.
func runIPC(t *testing.T, cfg string, n int, size, sinkProps, srcProps string) (sent, got elements.ChecksumResult, st elements.IPCSinkStats) {
	t.Helper()
	srv := routertest.Start(t, cfg)
	sock := srv.SocketPath()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()

	rx, err := pipeline.Launch(fmt.Sprintf(`ipcsrc socket=%q topic=t num-buffers=%d %s ! checksum name=c ! fakesink`, sock, n, srcProps), nil)
	require.NoError(t, err)
	rxp, err := pipeline.New(rx, pipeline.Options{})
	require.NoError(t, err)
	require.NoError(t, rxp.Start(ctx))

	tx, err := pipeline.Launch(fmt.Sprintf(`testsrc num-buffers=%d size=%s pattern=random ! checksum name=c ! ipcsink name=s socket=%q topic=t wait-subscribers=1 block-timeout=1m %s`, n, size, sock, sinkProps), nil)
	require.NoError(t, err)
	require.NoError(t, pipeline.Run(ctx, tx, pipeline.Options{}))
	require.NoError(t, rxp.Wait())

	sent = tx.Element("c").(*elements.Checksum).Result()
	got = rx.Element("c").(*elements.Checksum).Result()
	st = tx.Element("s").(*elements.IPCSink).Stats()
	return sent, got, st
}

func TestIPCZeroCopy(t *testing.T) {
	t.Parallel()
	cfg := routertest.Small
	n := 2000
	if testing.Short() {
		n = 200
	}
	sent, got, st := runIPC(t, cfg, n, "64KiB", "max-payload=64KiB", "")
	require.Equal(t, sent, got)
	require.Equal(t, uint64(n), got.Buffers)
	require.Equal(t, uint64(n)<<16, got.Bytes)
	require.Equal(t, elements.IPCSinkStats{Published: uint64(n), Bytes: uint64(n) << 16, ZeroCopy: uint64(n)}, st,
		"every buffer reaching ipcsink is its own chunk: no byte copied")
}

func TestIPCCopyCounted(t *testing.T) {
	t.Parallel()
	cfg := routertest.Small
	n := 100
	sent, got, st := runIPC(t, cfg, n, "4KiB", "copy=true", "")
	require.Equal(t, sent, got)
	require.Equal(t, uint64(n), st.Copied)
	require.Equal(t, uint64(n)*4096, st.CopiedBytes)
	require.Zero(t, st.ZeroCopy)
	require.GreaterOrEqual(t, elements.IPCCopiedBytes(), st.CopiedBytes)
}

// replace is a transform that replaces each buffer by a heap copy: the
// sink cannot publish it in place.
type replace struct{}

func (replace) Process(_ context.Context, b *buffer.Buffer) (*buffer.Buffer, error) {
	c := buffer.New(append([]byte(nil), b.Bytes()...))
	b.Release()
	return c, nil
}

func TestIPCReplacedBufferIsCopied(t *testing.T) {
	t.Parallel()
	testIPCReplacedBufferIsCopied(t, routertest.Small)
}

func testIPCReplacedBufferIsCopied(t *testing.T, cfg string) {
	srv := routertest.Start(t, cfg)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	src := &elements.IPCSrc{Topic: "r", Socket: srv.SocketPath(), NumBuffers: 10}
	var rx pipeline.Graph
	require.NoError(t, rx.Add("src", src))
	require.NoError(t, rx.Add("sink", &elements.FakeSink{}))
	require.NoError(t, rx.Chain("src", "sink"))
	rxp, err := pipeline.New(&rx, pipeline.Options{})
	require.NoError(t, err)
	require.NoError(t, rxp.Start(ctx))

	sink := &elements.IPCSink{Topic: "r", Socket: srv.SocketPath(), WaitSubscribers: 1}
	var tx pipeline.Graph
	require.NoError(t, tx.Add("src", &elements.TestSrc{Size: 1000, NumBuffers: 10, Pattern: elements.PatternCounter}))
	require.NoError(t, tx.Add("replace", replace{}))
	require.NoError(t, tx.Add("sink", sink))
	require.NoError(t, tx.Chain("src", "replace", "sink"))
	require.NoError(t, pipeline.Run(ctx, &tx, pipeline.Options{}))
	require.NoError(t, rxp.Wait())
	require.Equal(t, elements.IPCSinkStats{Published: 10, Bytes: 10000, Copied: 10, CopiedBytes: 10000}, sink.Stats())
	require.Equal(t, uint64(10), src.Received())
}

func TestIPCSrcBuffersAreReadOnlyViews(t *testing.T) {
	t.Parallel()
	testIPCSrcBuffersAreReadOnlyViews(t, routertest.Small)
}

func testIPCSrcBuffersAreReadOnlyViews(t *testing.T, cfg string) {
	srv := routertest.Start(t, cfg)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	src := &elements.IPCSrc{Topic: "ro", Socket: srv.SocketPath()}
	require.NoError(t, src.Start(ctx))
	defer src.Close()
	sink := &elements.IPCSink{Topic: "ro", Socket: srv.SocketPath(), WaitSubscribers: 1}
	one := &oneShot{}
	var g pipeline.Graph
	require.NoError(t, g.Add("src", one))
	require.NoError(t, g.Add("sink", sink))
	require.NoError(t, g.Chain("src", "sink"))
	require.NoError(t, pipeline.Run(ctx, &g, pipeline.Options{}))
	require.True(t, one.fromSink, "the source allocated from the sink's shared pool")
	require.Equal(t, uint64(1), sink.Stats().ZeroCopy)

	got, err := src.Produce(ctx)
	require.NoError(t, err)
	require.Equal(t, "hello", string(got.Bytes()))
	require.True(t, elements.ReadOnly(got))
	if cfg == routertest.Owned {
		require.Equal(t, uint64(7), got.Meta.Seq, "the producer's Seq, carried in the chunk header")
	} else {
		require.Equal(t, uint64(1), got.Meta.Seq, "shared model: the publisher's sequence number")
	}
	got.Release()
}

// oneShot is a source producing one "hello" buffer from its negotiated
// allocator.
type oneShot struct {
	alloc          buffer.Allocator
	done, fromSink bool
}

func (o *oneShot) UseAllocator(a buffer.Allocator) { o.alloc = a }

func (o *oneShot) Produce(ctx context.Context) (*buffer.Buffer, error) {
	if o.done {
		return nil, io.EOF
	}
	o.done = true
	b, err := o.alloc.Alloc(ctx, 5)
	if err != nil {
		return nil, err
	}
	_, isDefault := o.alloc.(*buffer.Pool)
	o.fromSink = !isDefault && b.Memory().Ref() != parallax.NilRef && !elements.ReadOnly(b)
	copy(b.Bytes(), "hello")
	b.Meta.Seq = 7
	return b, nil
}

func TestIPCSrcTimeoutEndsStream(t *testing.T) {
	t.Parallel()
	srv := routertest.Start(t, "")
	g, err := pipeline.Launch(fmt.Sprintf(`ipcsrc socket=%q topic=quiet timeout=20ms ! fakesink name=f`, srv.SocketPath()), nil)
	require.NoError(t, err)
	require.NoError(t, pipeline.Run(context.Background(), g, pipeline.Options{}))
	require.Zero(t, g.Element("f").(*elements.FakeSink).Buffers())
}

// A coalescing ipcsrc (subscriber.Options.Coalesce) receives the whole
// stream; an out-of-range value is refused by name.
func TestIPCSrcCoalesce(t *testing.T) {
	t.Parallel()
	sent, got, _ := runIPC(t, "", 5000, "64", "", "queue=64 coalesce=200us")
	require.Equal(t, sent, got)
	require.Equal(t, uint64(5000), got.Buffers)

	_, err := pipeline.Launch("ipcsrc topic=t coalesce=2ms ! fakesink", nil)
	require.ErrorIs(t, err, pipeline.ErrBadValue)
	require.ErrorContains(t, err, "coalesce")
}

// ipcsrc spin= is the subscriber's spin budget, a duration: a stream
// arrives whole with a long spin and with none; out of range is refused.
func TestIPCSrcSpin(t *testing.T) {
	t.Parallel()
	for _, spin := range []string{"-1ns", "200us"} {
		sent, got, _ := runIPC(t, "", 2000, "64", "", "queue=64 spin="+spin)
		require.Equal(t, sent, got, "spin=%s", spin)
	}
	_, err := pipeline.Launch("ipcsrc topic=t spin=2s ! fakesink", nil)
	require.ErrorIs(t, err, pipeline.ErrBadValue)
	require.ErrorContains(t, err, "spin")
}

func TestIPCTopicRequired(t *testing.T) {
	t.Parallel()
	for _, line := range []string{"testsrc ! ipcsink", "ipcsrc ! fakesink"} {
		_, err := pipeline.Launch(line, nil)
		require.Error(t, err, line)
		require.ErrorIs(t, err, pipeline.ErrBadValue, line)
		require.Contains(t, err.Error(), "topic", line)
	}
}

func TestIPCSinkNoRouter(t *testing.T) {
	t.Parallel()
	g, err := pipeline.Launch(fmt.Sprintf(`testsrc ! ipcsink name=s topic=x socket=%q`, t.TempDir()+"/none.sock"), nil)
	require.NoError(t, err)
	err = pipeline.Run(context.Background(), g, pipeline.Options{})
	var ne *pipeline.NodeError
	require.True(t, errors.As(err, &ne), "%v", err)
	require.Equal(t, "s", ne.Node)
}
