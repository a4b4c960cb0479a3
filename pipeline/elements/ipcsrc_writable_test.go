package elements_test

import (
	"bytes"
	"context"
	"errors"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/parallax-ipc/parallax/buffer"
	"github.com/parallax-ipc/parallax/internal/routertest"
	"github.com/parallax-ipc/parallax/pipeline"
	"github.com/parallax-ipc/parallax/pipeline/elements"
	"github.com/parallax-ipc/parallax/publisher"
	"github.com/parallax-ipc/parallax/subscriber"
)

// An element that modifies buffers in place after MakeWritable works behind
// an ipcsrc: the received samples are not Writable (their bytes are mapped
// read-only), MakeWritable hands it a private copy, and the publisher's
// bytes, as another subscriber sees them, stay unchanged.
func TestIPCSrcBuffersNotWritable(t *testing.T) {
	t.Parallel()
	testIPCSrcBuffersNotWritable(t, routertest.Small)
}

func testIPCSrcBuffersNotWritable(t *testing.T, cfg string) {
	srv := routertest.Start(t, cfg)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()

	witness, err := subscriber.New(ctx, "cow", subscriber.Options{Socket: srv.SocketPath()})
	require.NoError(t, err)
	defer witness.Close()
	up := &upperInPlace{}
	out := &collect{}
	var g pipeline.Graph
	require.NoError(t, g.Add("src", &elements.IPCSrc{Topic: "cow", Socket: srv.SocketPath(), NumBuffers: 1}))
	require.NoError(t, g.Add("upper", up))
	require.NoError(t, g.Add("sink", out))
	require.NoError(t, g.Chain("src", "upper", "sink"))
	p, err := pipeline.New(&g, pipeline.Options{})
	require.NoError(t, err)
	require.NoError(t, p.Start(ctx))

	pub, err := publisher.New(ctx, "cow", publisher.Options{Socket: srv.SocketPath()})
	require.NoError(t, err)
	defer pub.Close()
	require.NoError(t, pub.WaitForSubscribers(ctx, 2))
	require.NoError(t, pub.Send([]byte("hello")))
	require.NoError(t, p.Wait())

	require.True(t, up.sawReadOnly, "ipcsrc buffers are read-only views")
	require.False(t, up.inWritable, "Writable() of a read-only ipcsrc sample")
	require.Equal(t, []string{"HELLO"}, out.got)
	x, err := witness.Take(ctx)
	require.NoError(t, err)
	require.Equal(t, "hello", string(x.Bytes()), "the publisher's bytes are unchanged")
	require.NoError(t, x.Release())
}

// upperInPlace upper-cases each buffer in place after
// [buffer.Buffer.MakeWritable], as an element that edits data would.
type upperInPlace struct {
	inWritable, sawReadOnly bool
}

func (u *upperInPlace) Process(ctx context.Context, b *buffer.Buffer) (*buffer.Buffer, error) {
	u.inWritable, u.sawReadOnly = b.Writable(), elements.ReadOnly(b)
	w, err := b.MakeWritable(ctx, nil)
	if err != nil {
		b.Release()
		return nil, err
	}
	if elements.ReadOnly(w) {
		// Writing would fault on the read-only mapping.
		w.Release()
		return nil, errors.New("MakeWritable returned the read-only sample itself")
	}
	copy(w.Bytes(), bytes.ToUpper(w.Bytes()))
	return w, nil
}

// collect keeps a copy of every buffer's bytes.
type collect struct{ got []string }

func (c *collect) Consume(_ context.Context, b *buffer.Buffer) error {
	c.got = append(c.got, string(b.Bytes()))
	b.Release()
	return nil
}
