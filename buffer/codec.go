package buffer

import (
	"context"
	"fmt"
	"reflect"

	"github.com/vmihailenco/msgpack/v5"

	"github.com/parallax-ipc/parallax/segment"
)

// View returns a *T aliasing the start of b's bytes, for a fixed-layout T
// (no pointers: see [segment.CheckFixedLayout], whose verdict is cached per
// type). No byte is copied. The view is valid only until b is released; write
// through it only when b is [Buffer.Writable].
func View[T any](b *Buffer) (*T, error) {
	v, err := segment.View[T](b.Bytes())
	if err != nil {
		return nil, fmt.Errorf("view %d-byte buffer as %s: %w", b.Len(), reflect.TypeFor[T](), err)
	}
	return v, nil
}

// AllocValue allocates a buffer holding one zeroed T from a and returns it
// with a view of the value.
func AllocValue[T any](ctx context.Context, a Allocator) (*Buffer, *T, error) {
	size, _ := segment.SizeOf[T]()
	if err := segment.CheckFixedLayout[T](); err != nil {
		return nil, nil, fmt.Errorf("allocate %s: %w", reflect.TypeFor[T](), err)
	}
	b, err := a.Alloc(ctx, int(size))
	if err != nil {
		return nil, nil, err
	}
	clear(b.Bytes())
	v, err := View[T](b)
	if err != nil {
		b.Release()
		return nil, nil, err
	}
	return b, v, nil
}

// decoded caches one decoding of a memory's bytes.
type decoded struct {
	typ    reflect.Type
	off, n int
	val    any
	err    error
}

// Msgpack is the codec of dynamic (non-fixed-layout) types: msgpack bytes in
// a buffer. The zero value is ready to use and may be copied; it is safe for
// concurrent use.
type Msgpack[T any] struct{}

// Encode encodes v into a new buffer from a. It allocates (encoding is the
// cold path of dynamic types).
func (Msgpack[T]) Encode(ctx context.Context, a Allocator, v *T) (*Buffer, error) {
	p, err := msgpack.Marshal(v)
	if err != nil {
		return nil, fmt.Errorf("encode %s: %w", reflect.TypeFor[T](), err)
	}
	b, err := a.Alloc(ctx, len(p))
	if err != nil {
		return nil, err
	}
	copy(b.Bytes(), p)
	return b, nil
}

// Decode decodes b's bytes as a T. The bytes are validated and decoded once
// per memory: the result (value or error) is cached on the [Memory], so
// every clone of b, in any goroutine, gets the same *T without decoding
// again. The *T is shared: treat it as read-only. The cache is dropped when
// the memory returns to its allocator.
func (Msgpack[T]) Decode(b *Buffer) (*T, error) {
	typ := reflect.TypeFor[T]()
	m := b.Memory()
	if m == nil {
		return nil, fmt.Errorf("decode %s: value buffer has no bytes: %w", typ, ErrRange)
	}
	if c := m.cache.Load(); c != nil && c.typ == typ && c.off == b.off && c.n == b.n {
		if c.err != nil {
			return nil, c.err
		}
		return c.val.(*T), nil
	}
	v := new(T)
	err := msgpack.Unmarshal(b.Bytes(), v)
	if err != nil {
		err = fmt.Errorf("decode %d bytes as %s: %w", b.n, typ, err)
	}
	// Racing decoders of clones may both decode; either result is equal.
	m.cache.Store(&decoded{typ: typ, off: b.off, n: b.n, val: v, err: err})
	if err != nil {
		return nil, err
	}
	return v, nil
}
