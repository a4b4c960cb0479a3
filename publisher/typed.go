package publisher

import (
	"context"
	"fmt"

	"github.com/parallax-ipc/parallax"
	"github.com/parallax-ipc/parallax/segment"
)

// Typed publishes values of a fixed-layout type T (no pointers, strings,
// slices, maps or interfaces), written in place in shared memory. The topic
// type is T's name, size and alignment, so a subscriber of another type is
// refused with parallax.ErrIncompatibleType.
//
// Use [NewTyped]; concurrency rules are those of [Publisher].
type Typed[T any] struct {
	p *Publisher
}

// TypedChunk is a loaned chunk viewed as a T. The pointer aliases shared
// memory and is only valid until the chunk is published or released.
type TypedChunk[T any] struct {
	Chunk
	v *T
}

// Value returns the T to fill in.
func (c TypedChunk[T]) Value() *T { return c.v }

// TypeName returns the topic type name used for T (see parallax.TypeName).
func TypeName[T any]() string { return parallax.TypeName[T]() }

// NewTyped creates a publisher of T values on topic. opts' type fields are
// filled from T (a non-empty opts.TypeName overrides the name).
func NewTyped[T any](ctx context.Context, topic string, opts Options) (*Typed[T], error) {
	if err := segment.CheckFixedLayout[T](); err != nil {
		return nil, fmt.Errorf("typed publisher on %q: %w", topic, err)
	}
	size, align := segment.SizeOf[T]()
	if opts.TypeName == "" {
		opts.TypeName = TypeName[T]()
	}
	opts.TypeSize, opts.TypeAlign = uint32(size), uint32(align)
	p, err := New(ctx, topic, opts)
	if err != nil {
		return nil, err
	}
	return &Typed[T]{p: p}, nil
}

// Publisher returns the underlying untyped publisher.
func (t *Typed[T]) Publisher() *Publisher { return t.p }

// Loan returns a chunk holding one zeroed T.
func (t *Typed[T]) Loan() (TypedChunk[T], error) {
	c, err := t.p.Loan(int(t.p.opts.TypeSize))
	if err != nil {
		return TypedChunk[T]{}, err
	}
	v, err := segment.View[T](c.Bytes())
	if err != nil {
		_ = t.p.Release(c)
		return TypedChunk[T]{}, err
	}
	var zero T
	*v = zero
	return TypedChunk[T]{Chunk: c, v: v}, nil
}

// Publish publishes a loaned chunk.
func (t *Typed[T]) Publish(c TypedChunk[T]) error { return t.p.Publish(c.Chunk) }

// Send copies v into a loaned chunk and publishes it.
func (t *Typed[T]) Send(v T) error {
	c, err := t.Loan()
	if err != nil {
		return err
	}
	*c.v = v
	return t.p.Publish(c.Chunk)
}

// Close closes the publisher.
func (t *Typed[T]) Close() error { return t.p.Close() }
