package subscriber

import (
	"context"
	"fmt"

	"github.com/parallax-ipc/parallax"
	"github.com/parallax-ipc/parallax/segment"
)

// Typed receives values of a fixed-layout type T published by a
// publisher.Typed[T]. Use [NewTyped]; concurrency rules are those of
// [Subscriber].
type Typed[T any] struct {
	s *Subscriber
}

// TypedSample is a received T. Value points into read-only shared memory
// and is only valid until Release; writing through it faults.
type TypedSample[T any] struct {
	Sample
	v *T
}

// Value returns the received value (read-only, valid until Release).
func (x TypedSample[T]) Value() *T { return x.v }

// Copy returns a copy of the value, usable after Release.
func (x TypedSample[T]) Copy() T { return *x.v }

// NewTyped subscribes to topic for T values. opts' type fields are filled
// from T (a non-empty opts.TypeName overrides the name).
func NewTyped[T any](ctx context.Context, topic string, opts Options) (*Typed[T], error) {
	if err := segment.CheckFixedLayout[T](); err != nil {
		return nil, fmt.Errorf("typed subscriber on %q: %w", topic, err)
	}
	size, align := segment.SizeOf[T]()
	if opts.TypeName == "" {
		opts.TypeName = parallax.TypeName[T]()
	}
	opts.TypeSize, opts.TypeAlign = uint32(size), uint32(align)
	s, err := New(ctx, topic, opts)
	if err != nil {
		return nil, err
	}
	return &Typed[T]{s: s}, nil
}

// Subscriber returns the underlying untyped subscriber.
func (t *Typed[T]) Subscriber() *Subscriber { return t.s }

func (t *Typed[T]) typed(x Sample, err error) (TypedSample[T], error) {
	if err != nil {
		return TypedSample[T]{}, err
	}
	v, err := segment.View[T](x.Bytes())
	if err != nil {
		_ = x.Release()
		return TypedSample[T]{}, fmt.Errorf("typed subscriber on %q: %w", t.s.topic, err)
	}
	return TypedSample[T]{Sample: x, v: v}, nil
}

// TryTake is Subscriber.TryTake for T.
func (t *Typed[T]) TryTake() (TypedSample[T], error) { return t.typed(t.s.TryTake()) }

// Take is Subscriber.Take for T.
func (t *Typed[T]) Take(ctx context.Context) (TypedSample[T], error) { return t.typed(t.s.Take(ctx)) }

// Close closes the subscriber.
func (t *Typed[T]) Close() error { return t.s.Close() }
