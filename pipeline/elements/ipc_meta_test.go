package elements_test

import (
	"context"
	"fmt"
	"io"
	"math"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/parallax-ipc/parallax/buffer"
	"github.com/parallax-ipc/parallax/internal/routertest"
	"github.com/parallax-ipc/parallax/pipeline"
	"github.com/parallax-ipc/parallax/pipeline/elements"
)

// metaOf is the metadata metaSrc gives buffer i: every field differs per
// buffer, and some take extreme values (NoTime, negative, maximum).
func metaOf(i int) buffer.Meta {
	m := buffer.Meta{
		PTS:      time.Duration(i) * 33 * time.Millisecond,
		DTS:      time.Duration(i-1) * 33 * time.Millisecond,
		Duration: 33*time.Millisecond + time.Duration(i),
		Seq:      uint64(1000 - i),
		Offset:   uint64(i) * 1500,
		Flags:    buffer.Flags(i) & (buffer.FlagDiscont | buffer.FlagDelta | buffer.FlagGap | buffer.FlagMarker | buffer.FlagCorrupt),
	}
	switch i % 5 {
	case 1:
		m.PTS, m.DTS = buffer.NoTime, buffer.NoTime
	case 2:
		m.PTS, m.Offset, m.Seq = math.MinInt64, math.MaxUint64, math.MaxUint64
	case 3:
		m.Flags |= 1 << 30 // a flag buffer does not name is carried too
	}
	return m
}

// metaSrc produces n buffers from its negotiated allocator, buffer i
// holding i and metaOf(i).
type metaSrc struct {
	alloc buffer.Allocator
	n, i  int
}

func (s *metaSrc) UseAllocator(a buffer.Allocator) { s.alloc = a }

func (s *metaSrc) Produce(ctx context.Context) (*buffer.Buffer, error) {
	if s.i == s.n {
		return nil, io.EOF
	}
	b, err := s.alloc.Alloc(ctx, 100)
	if err != nil {
		return nil, err
	}
	clear(b.Bytes())
	b.Bytes()[0], b.Bytes()[1] = byte(s.i), byte(s.i>>8)
	b.Meta = metaOf(s.i)
	s.i++
	return b, nil
}

// metaCheck records every buffer's metadata by the index in its bytes.
type metaCheck struct{ got []buffer.Meta }

func (c *metaCheck) Consume(_ context.Context, b *buffer.Buffer) error {
	i := int(b.Bytes()[0]) | int(b.Bytes()[1])<<8
	if i != len(c.got) {
		b.Release()
		return fmt.Errorf("buffer %d arrived at position %d", i, len(c.got))
	}
	c.got = append(c.got, b.Meta)
	b.Release()
	return nil
}

// ipcsink → ipcsrc carries each buffer's metadata exactly in the owned
// model (with no byte copied, and an ipcsrc holding at most 2 samples:
// it waits for its buffers to be released). The shared model has no room
// for it: the ipcsrc sees the publisher's sequence and no timestamps.
func TestIPCMetadata(t *testing.T) {
	t.Parallel()
	testIPCMetadata(t, routertest.Small)
}

func testIPCMetadata(t *testing.T, cfg string) {
	const n = 300
	srv := routertest.Start(t, cfg)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	src := &elements.IPCSrc{Topic: "m", Socket: srv.SocketPath(), NumBuffers: n, MaxHeld: 2}
	check := &metaCheck{}
	var rx pipeline.Graph
	require.NoError(t, rx.Add("src", src))
	require.NoError(t, rx.Add("check", check))
	require.NoError(t, rx.Chain("src", "check"))
	rxp, err := pipeline.New(&rx, pipeline.Options{})
	require.NoError(t, err)
	require.NoError(t, rxp.Start(ctx))

	sink := &elements.IPCSink{Topic: "m", Socket: srv.SocketPath(), WaitSubscribers: 1, BlockTimeout: time.Minute}
	var tx pipeline.Graph
	require.NoError(t, tx.Add("src", &metaSrc{n: n}))
	require.NoError(t, tx.Add("sink", sink))
	require.NoError(t, tx.Chain("src", "sink"))
	require.NoError(t, pipeline.Run(ctx, &tx, pipeline.Options{}))
	require.NoError(t, rxp.Wait())

	require.Equal(t, elements.IPCSinkStats{Published: n, Bytes: n * 100, ZeroCopy: n}, sink.Stats())
	require.Len(t, check.got, n)
	for i, got := range check.got {
		want := metaOf(i)
		if cfg != routertest.Owned {
			want = buffer.Meta{Seq: uint64(i + 1), PTS: buffer.NoTime, DTS: buffer.NoTime}
		}
		require.Equal(t, want, got, "buffer %d", i)
	}
}
