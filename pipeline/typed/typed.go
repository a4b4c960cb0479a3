// Package typed builds pipelines of Go values with generics: [Source],
// [Map], [Filter] and [Sink] connect through [Port] values whose type
// parameter the compiler checks, so a Map[A, B] fed from a Port[C] does not
// compile. The nodes are ordinary elements in a [pipeline.Graph] and run on
// the same executor as launch-line pipelines; they mix with untyped elements
// such as queue or tee (use [Port.Node] and [Attach]).
//
// Values of fixed-layout types (no pointers, see segment.CheckFixedLayout)
// travel inside buffers from the negotiated allocator: no allocation per
// value. Other types travel as [buffer.Buffer] values ([buffer.NewValue]),
// which allocates when boxing a non-pointer value.
package typed

import (
	"context"
	"fmt"
	"reflect"

	"github.com/parallax-ipc/parallax/buffer"
	"github.com/parallax-ipc/parallax/pipeline"
	"github.com/parallax-ipc/parallax/segment"
)

// A Port is a typed output of a node of a graph. It is a small value; copy
// it freely. The zero value is invalid.
type Port[T any] struct {
	g    *pipeline.Graph
	node string
}

// Node returns the node's name, to link it to untyped elements.
func (p Port[T]) Node() string { return p.node }

// Attach returns a Port[T] for an existing node (for example a queue placed
// after a typed node). The type is checked at validation, by name.
func Attach[T any](g *pipeline.Graph, node string) Port[T] { return Port[T]{g: g, node: node} }

// TypeName is the pad type name of T used in graph validation.
func TypeName[T any]() string { return reflect.TypeFor[T]().String() }

type codec[T any] struct {
	fixed bool
	size  int
	name  string
}

func newCodec[T any]() codec[T] {
	size, _ := segment.SizeOf[T]()
	return codec[T]{fixed: segment.CheckFixedLayout[T]() == nil, size: int(size), name: TypeName[T]()}
}

func (c codec[T]) encode(ctx context.Context, a buffer.Allocator, v T) (*buffer.Buffer, error) {
	if !c.fixed {
		return buffer.NewValue(v), nil
	}
	b, err := a.Alloc(ctx, c.size)
	if err != nil {
		return nil, fmt.Errorf("allocate %s: %w", c.name, err)
	}
	p, err := buffer.View[T](b)
	if err != nil {
		b.Release()
		return nil, err
	}
	*p = v
	return b, nil
}

func (c codec[T]) decode(b *buffer.Buffer) (T, error) {
	var zero T
	if !c.fixed {
		v, ok := b.Value().(T)
		if !ok {
			return zero, fmt.Errorf("buffer carries %T, not %s", b.Value(), c.name)
		}
		return v, nil
	}
	p, err := buffer.View[T](b)
	if err != nil {
		return zero, err
	}
	return *p, nil
}

type allocUser struct{ alloc buffer.Allocator }

func (u *allocUser) UseAllocator(a buffer.Allocator) { u.alloc = a }

type sourceElem[T any] struct {
	allocUser
	c  codec[T]
	fn func(ctx context.Context) (T, error)
}

func (s *sourceElem[T]) PadTypes() (in, out string) { return "", s.c.name }

func (s *sourceElem[T]) Produce(ctx context.Context) (*buffer.Buffer, error) {
	v, err := s.fn(ctx)
	if err != nil {
		return nil, err
	}
	return s.c.encode(ctx, s.alloc, v)
}

// Source adds a node named name producing the values fn returns until it
// returns io.EOF (end of stream) or another error (the pipeline fails).
func Source[T any](g *pipeline.Graph, name string, fn func(ctx context.Context) (T, error)) (Port[T], error) {
	err := g.Add(name, &sourceElem[T]{c: newCodec[T](), fn: fn})
	return Port[T]{g: g, node: name}, err
}

type mapElem[In, Out any] struct {
	allocUser
	in  codec[In]
	out codec[Out]
	fn  func(ctx context.Context, v In) (Out, error)
}

func (m *mapElem[In, Out]) PadTypes() (in, out string) { return m.in.name, m.out.name }

func (m *mapElem[In, Out]) Process(ctx context.Context, b *buffer.Buffer) (*buffer.Buffer, error) {
	v, err := m.in.decode(b)
	meta := b.Meta
	b.Release()
	if err != nil {
		return nil, err
	}
	o, err := m.fn(ctx, v)
	if err != nil {
		return nil, err
	}
	ob, err := m.out.encode(ctx, m.alloc, o)
	if err == nil {
		ob.Meta = meta
	}
	return ob, err
}

// Map adds a node named name applying fn to every value of from.
func Map[In, Out any](from Port[In], name string, fn func(ctx context.Context, v In) (Out, error)) (Port[Out], error) {
	if err := from.g.Add(name, &mapElem[In, Out]{in: newCodec[In](), out: newCodec[Out](), fn: fn}); err != nil {
		return Port[Out]{}, err
	}
	return Port[Out]{g: from.g, node: name}, from.g.Link(from.node, name)
}

type filterElem[T any] struct {
	c    codec[T]
	keep func(v T) bool
}

func (f *filterElem[T]) PadTypes() (in, out string) { return f.c.name, f.c.name }

func (f *filterElem[T]) ForwardsAllocation() bool { return true }

func (f *filterElem[T]) Process(_ context.Context, b *buffer.Buffer) (*buffer.Buffer, error) {
	v, err := f.c.decode(b)
	if err != nil {
		b.Release()
		return nil, err
	}
	if !f.keep(v) {
		b.Release()
		return nil, nil
	}
	return b, nil
}

// Filter adds a node named name passing on the values of from for which
// keep returns true (the buffers themselves: no copy).
func Filter[T any](from Port[T], name string, keep func(v T) bool) (Port[T], error) {
	if err := from.g.Add(name, &filterElem[T]{c: newCodec[T](), keep: keep}); err != nil {
		return Port[T]{}, err
	}
	return Port[T]{g: from.g, node: name}, from.g.Link(from.node, name)
}

type sinkElem[T any] struct {
	c  codec[T]
	fn func(ctx context.Context, v T) error
}

func (s *sinkElem[T]) PadTypes() (in, out string) { return s.c.name, "" }

func (s *sinkElem[T]) Consume(ctx context.Context, b *buffer.Buffer) error {
	v, err := s.c.decode(b)
	b.Release()
	if err != nil {
		return err
	}
	return s.fn(ctx, v)
}

// Sink adds a node named name calling fn with every value of from. fn may
// return io.EOF to finish early.
func Sink[T any](from Port[T], name string, fn func(ctx context.Context, v T) error) error {
	if err := from.g.Add(name, &sinkElem[T]{c: newCodec[T](), fn: fn}); err != nil {
		return err
	}
	return from.g.Link(from.node, name)
}
