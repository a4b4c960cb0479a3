package buffer_test

import (
	"context"
	"errors"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/parallax-ipc/parallax"
	"github.com/parallax-ipc/parallax/buffer"
)

// A buffer over read-only memory is never writable, even as the only
// reference, and MakeWritable copies it into a distinct writable buffer
// without touching the original bytes.
func TestReadOnlyMemoryIsNotWritable(t *testing.T) {
	t.Parallel()
	src := []byte("hello")
	m := buffer.NewMemory(src, nil, nil, 0, parallax.NilRef)
	m.SetReadOnly()
	b := m.NewBuffer(len(src))
	b.Meta.Seq = 9
	require.True(t, m.ReadOnly())
	require.Equal(t, int32(1), m.Refs())
	require.False(t, b.Writable(), "read-only memory with one reference")

	w, err := b.MakeWritable(context.Background(), nil)
	require.NoError(t, err)
	defer w.Release()
	require.NotSame(t, m, w.Memory(), "a copy, not the read-only memory")
	require.True(t, w.Writable())
	require.Equal(t, "hello", string(w.Bytes()))
	require.Equal(t, uint64(9), w.Meta.Seq)
	require.Zero(t, m.Refs(), "the read-only buffer was released")
	w.Bytes()[0] = 'J'
	require.Equal(t, "hello", string(src))

	// Init makes a memory writable again.
	m.Init(src, nil, nil, 0, parallax.NilRef)
	require.False(t, m.ReadOnly())
	b = m.NewBuffer(len(src))
	require.True(t, b.Writable())
	b.Release()
}

// MakeWritable returns a writable buffer itself and copies a shared one,
// leaving the other holder's bytes alone.
func TestMakeWritable(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	p := newPool(t, buffer.PoolOptions{})
	b, err := p.Alloc(ctx, 5)
	require.NoError(t, err)
	copy(b.Bytes(), "hello")
	same, err := b.MakeWritable(ctx, p)
	require.NoError(t, err)
	require.Same(t, b, same)

	c := b.Clone()
	require.False(t, c.Writable())
	w, err := c.MakeWritable(ctx, p)
	require.NoError(t, err)
	require.NotSame(t, b.Memory(), w.Memory())
	require.True(t, w.Writable())
	require.True(t, b.Writable(), "the clone's reference was released")
	copy(w.Bytes(), "HELLO")
	require.Equal(t, "hello", string(b.Bytes()))
	require.Equal(t, "HELLO", string(w.Bytes()))
	w.Release()
	b.Release()
	require.Zero(t, p.Stats().InUse)
}

// When the copy cannot be allocated, MakeWritable fails and the caller
// still owns the buffer.
func TestMakeWritableAllocFails(t *testing.T) {
	t.Parallel()
	b := buffer.New([]byte("abc"))
	c := b.Clone()
	_, err := c.MakeWritable(context.Background(), failAlloc{})
	require.ErrorIs(t, err, errNoMemory)
	require.Equal(t, int32(2), b.Memory().Refs())
	c.Release()
	b.Release()
}

var errNoMemory = errors.New("no memory")

type failAlloc struct{}

func (failAlloc) Alloc(context.Context, int) (*buffer.Buffer, error) { return nil, errNoMemory }
