package subscriber_test

import (
	"context"
	"math"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/parallax-ipc/parallax"
	"github.com/parallax-ipc/parallax/internal/routertest"
	"github.com/parallax-ipc/parallax/publisher"
	"github.com/parallax-ipc/parallax/subscriber"
)

// Media metadata set with Chunk.SetMeta reaches the subscriber exactly in
// the owned model, extreme values included, with the reserved flag bit
// dropped; a chunk without SetMeta reports none. The shared model carries
// none (no room in its chunk header), whatever the publisher set.
func TestSampleMeta(t *testing.T) {
	t.Parallel()
	testSampleMeta(t, routertest.Small)
}

func testSampleMeta(t *testing.T, cfg string) {
	srv := routertest.Start(t, cfg)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	sock := srv.SocketPath()
	sub, err := subscriber.New(ctx, "meta", subscriber.Options{Socket: sock, QueueCapacity: 16, Policy: subscriber.BlockProducer})
	require.NoError(t, err)
	defer sub.Close()
	pub, err := publisher.New(ctx, "meta", publisher.Options{Socket: sock})
	require.NoError(t, err)
	defer pub.Close()
	require.NoError(t, pub.WaitForSubscribers(ctx, 1))

	metas := []parallax.SampleMeta{
		{PTS: 40 * time.Millisecond, DTS: 20 * time.Millisecond, Duration: 40 * time.Millisecond, Offset: 4096, Seq: 17, Flags: 0x1f},
		{PTS: -1, DTS: -1, Duration: 0, Offset: 0, Seq: 0, Flags: 0},
		{PTS: math.MinInt64, DTS: math.MaxInt64, Duration: -5, Offset: math.MaxUint64, Seq: math.MaxUint64, Flags: 0x7fffffff},
		{Seq: 3, Flags: math.MaxUint32}, // the reserved bit 31 is not carried
	}
	for i, m := range metas {
		c, err := pub.Loan(8)
		require.NoError(t, err)
		c.Bytes()[0] = byte(i)
		c.SetMeta(m)
		require.NoError(t, pub.Publish(c))
	}
	require.NoError(t, pub.Send([]byte("plain"))) // no SetMeta

	for i, want := range metas {
		x, err := sub.Take(ctx)
		require.NoError(t, err)
		require.Equal(t, byte(i), x.Bytes()[0])
		require.Equal(t, uint64(i+1), x.Header().Seq, "the header's Seq stays the publisher's")
		got, ok := x.Meta()
		if cfg == routertest.Owned {
			require.True(t, ok, "sample %d", i)
			want.Flags &^= parallax.MetaFlagsReserved
			require.Equal(t, want, got, "sample %d", i)
		} else {
			require.False(t, ok, "shared model: no room for metadata")
			require.Zero(t, got)
		}
		require.NoError(t, x.Release())
	}
	x, err := sub.Take(ctx)
	require.NoError(t, err)
	got, ok := x.Meta()
	require.False(t, ok, "a chunk published without SetMeta has none")
	require.Zero(t, got)
	require.NoError(t, x.Release())
}

// A Sample's header is the chunk header as read at take time: it stays
// the same after Release (when the chunk may already be reused), names the
// publisher, and the zero Sample reports a zero header, no bytes and no
// ref.
func TestSampleHeaderAfterRelease(t *testing.T) {
	t.Parallel()
	var zero subscriber.Sample
	require.Zero(t, zero.Header())
	require.Nil(t, zero.Bytes())
	require.Equal(t, parallax.NilRef, zero.Ref())

	srv := routertest.Start(t, "")
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	sock := srv.SocketPath()
	sub, err := subscriber.New(ctx, "hdr", subscriber.Options{Socket: sock, QueueCapacity: 4, Policy: subscriber.BlockProducer})
	require.NoError(t, err)
	defer sub.Close()
	pub, err := publisher.New(ctx, "hdr", publisher.Options{Socket: sock, MaxPayload: 8})
	require.NoError(t, err)
	defer pub.Close()
	require.NoError(t, pub.WaitForSubscribers(ctx, 1))

	c, err := pub.Loan(8)
	require.NoError(t, err)
	c.SetMeta(parallax.SampleMeta{Seq: 42, Flags: 5})
	require.NoError(t, pub.Publish(c))
	x, err := sub.Take(ctx)
	require.NoError(t, err)
	h := x.Header()
	require.Equal(t, uint64(1), h.Seq)
	require.Equal(t, uint64(42), h.UserSeq)
	require.NotZero(t, h.PublisherID)
	require.NotZero(t, h.Timestamp)
	require.NotEqual(t, parallax.NilRef, x.Ref())
	require.NoError(t, x.Release())
	// The chunk is back at the publisher, which may reuse it for the next
	// message with another header.
	require.NoError(t, pub.Send([]byte("second")))
	y, err := sub.Take(ctx)
	require.NoError(t, err)
	require.Equal(t, uint64(2), y.Header().Seq)
	require.Equal(t, h, x.Header(), "the released sample's header is its take-time copy")
	require.NoError(t, y.Release())
}
