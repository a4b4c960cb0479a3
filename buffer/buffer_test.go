package buffer_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/parallax-ipc/parallax/buffer"
	"github.com/parallax-ipc/parallax/mempool"
	"github.com/parallax-ipc/parallax/segment"
)

func newPool(t testing.TB, opts buffer.PoolOptions) *buffer.Pool {
	t.Helper()
	p, err := buffer.NewPool(opts)
	require.NoError(t, err)
	t.Cleanup(func() { require.NoError(t, p.Close()) })
	return p
}

func TestCloneSharesMemory(t *testing.T) {
	t.Parallel()
	p := newPool(t, buffer.PoolOptions{})
	b, err := p.Alloc(context.Background(), 100)
	require.NoError(t, err)
	require.Equal(t, 100, b.Len())
	require.Equal(t, 256, b.Cap())
	require.True(t, b.Writable())
	copy(b.Bytes(), "hello")
	b.Meta.Seq = 7

	c := b.Clone()
	require.False(t, b.Writable())
	require.Equal(t, int32(2), b.Memory().Refs())
	require.Equal(t, uint64(7), c.Meta.Seq)
	c.Meta.Seq = 8 // metadata is per buffer
	require.Equal(t, uint64(7), b.Meta.Seq)
	require.Equal(t, &b.Bytes()[0], &c.Bytes()[0], "a clone must not copy bytes")

	s, err := c.Slice(1, 3)
	require.NoError(t, err)
	require.Equal(t, "ell", string(s.Bytes()))
	_, err = c.Slice(90, 20)
	require.ErrorIs(t, err, buffer.ErrRange)

	h := s.Handle()
	require.NotNil(t, h.Segment)
	require.Equal(t, segment.KindHeap, h.Segment.Kind())
	require.Equal(t, byte('e'), h.Segment.Bytes()[h.Offset])
	require.False(t, h.Ref.IsNil())

	b.Release()
	c.Release()
	require.Equal(t, int64(1), p.Stats().InUse)
	s.Release()
	require.Equal(t, int64(0), p.Stats().InUse)
}

func TestSetLen(t *testing.T) {
	t.Parallel()
	b := buffer.New(make([]byte, 10))
	defer b.Release()
	require.NoError(t, b.SetLen(4))
	require.Len(t, b.Bytes(), 4)
	require.ErrorIs(t, b.SetLen(11), buffer.ErrRange)
	require.ErrorIs(t, b.SetLen(-1), buffer.ErrRange)
}

func TestReleaseTwicePanics(t *testing.T) {
	t.Parallel()
	b := buffer.New([]byte("x"))
	c := b.Clone()
	c.Release()
	require.Panics(t, func() { c.Clone() }) // detected while the struct is not yet reused
	b.Release()
}

func TestPoolReuseWithoutAllocating(t *testing.T) {
	p := newPool(t, buffer.PoolOptions{Classes: []mempool.Class{{ChunkSize: 4096, Count: 8}}})
	ctx := context.Background()
	allocs := testing.AllocsPerRun(1000, func() {
		b, err := p.Alloc(ctx, 4096)
		if err != nil {
			panic(err)
		}
		c := b.Clone()
		b.Release()
		c.Release()
	})
	require.Zero(t, allocs)
	st := p.Stats()
	require.Zero(t, st.HeapFallbacks)
	require.Zero(t, st.InUse)
}

func TestPoolFallbackAndBlock(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	classes := []mempool.Class{{ChunkSize: 64, Count: 1}}

	t.Run("fallback", func(t *testing.T) {
		t.Parallel()
		p := newPool(t, buffer.PoolOptions{Classes: classes})
		a, err := p.Alloc(ctx, 64)
		require.NoError(t, err)
		b, err := p.Alloc(ctx, 64) // exhausted: Go memory
		require.NoError(t, err)
		require.Nil(t, b.Handle().Segment)
		big, err := p.Alloc(ctx, 1000) // larger than every class
		require.NoError(t, err)
		require.Equal(t, uint64(2), p.Stats().HeapFallbacks)
		require.ErrorIs(t, p.Close(), buffer.ErrInUse)
		a.Release()
		b.Release()
		big.Release()
	})
	t.Run("block", func(t *testing.T) {
		t.Parallel()
		p := newPool(t, buffer.PoolOptions{Classes: classes, Block: true})
		a, err := p.Alloc(ctx, 64)
		require.NoError(t, err)

		short, cancel := context.WithTimeout(ctx, 10*time.Millisecond)
		defer cancel()
		_, err = p.Alloc(short, 64)
		require.ErrorIs(t, err, context.DeadlineExceeded)

		got := make(chan error, 1)
		go func() {
			b, err := p.Alloc(ctx, 64)
			if err == nil {
				b.Release()
			}
			got <- err
		}()
		a.Release() // wakes the waiter
		require.NoError(t, <-got)
		require.GreaterOrEqual(t, p.Stats().Waits, uint64(1))
	})
}

func TestPoolConcurrentClones(t *testing.T) {
	t.Parallel()
	p := newPool(t, buffer.PoolOptions{Classes: []mempool.Class{{ChunkSize: 128, Count: 4}}, Block: true})
	ctx := context.Background()
	n := 2000
	if testing.Short() {
		n = 200
	}
	ch := make(chan *buffer.Buffer, 8)
	done := make(chan struct{})
	for range 2 {
		go func() {
			for b := range ch {
				b.Release()
			}
			done <- struct{}{}
		}()
	}
	for i := range n {
		b, err := p.Alloc(ctx, 8)
		require.NoError(t, err)
		b.Bytes()[0] = byte(i)
		ch <- b.Clone()
		ch <- b
	}
	close(ch)
	<-done
	<-done
	require.Zero(t, p.Stats().InUse)
	require.Zero(t, p.Stats().HeapFallbacks)
}

func TestNewPoolBadClass(t *testing.T) {
	t.Parallel()
	_, err := buffer.NewPool(buffer.PoolOptions{Classes: []mempool.Class{{ChunkSize: 100, Count: 1}}})
	require.ErrorIs(t, err, mempool.ErrBadClass)
	_, err = buffer.NewPool(buffer.PoolOptions{Classes: []mempool.Class{}})
	require.ErrorIs(t, err, mempool.ErrBadClass)
}

func TestClosedPool(t *testing.T) {
	t.Parallel()
	p, err := buffer.NewPool(buffer.PoolOptions{Classes: []mempool.Class{{ChunkSize: 64, Count: 1}}})
	require.NoError(t, err)
	require.NoError(t, p.Close())
	require.NoError(t, p.Close())
	_, err = p.Alloc(context.Background(), 1)
	require.True(t, errors.Is(err, buffer.ErrClosed))
}

type point struct{ X, Y int32 }

type record struct {
	Name string
	Tags []string
}

func TestTyped(t *testing.T) {
	t.Parallel()
	p := newPool(t, buffer.PoolOptions{})
	ctx := context.Background()

	b, v, err := buffer.AllocValue[point](ctx, p)
	require.NoError(t, err)
	v.X, v.Y = 3, 4
	cl := b.Clone()
	w, err := buffer.View[point](cl)
	require.NoError(t, err)
	require.Equal(t, point{3, 4}, *w)
	cl.Release()
	require.Equal(t, 8, b.Len())
	b.Memory().NewBuffer(0).Release() // extra ref taken and dropped
	b.Release()

	_, _, err = buffer.AllocValue[record](ctx, p)
	require.ErrorIs(t, err, segment.ErrNotFixedLayout)

	var codec buffer.Msgpack[record]
	enc, err := codec.Encode(ctx, p, &record{Name: "a", Tags: []string{"x"}})
	require.NoError(t, err)
	c := enc.Clone()
	r1, err := codec.Decode(enc)
	require.NoError(t, err)
	r2, err := codec.Decode(c)
	require.NoError(t, err)
	require.Same(t, r1, r2, "decoded once and cached")
	require.Equal(t, "a", r1.Name)
	enc.Release()
	c.Release()

	bad := buffer.New([]byte{0xc1}) // never-used msgpack code
	_, err = codec.Decode(bad)
	require.Error(t, err)
	_, err2 := codec.Decode(bad)
	require.Equal(t, err, err2, "the failure is cached too")
	bad.Release()
	require.Zero(t, p.Stats().InUse)
}

func TestValueBuffer(t *testing.T) {
	t.Parallel()
	b := buffer.NewValue("hi")
	c := b.Clone()
	require.Equal(t, "hi", c.Value())
	require.Nil(t, c.Bytes())
	require.True(t, c.Writable())
	b.Release()
	c.Release()
}
