package pipeline

import (
	"context"

	"github.com/parallax-ipc/parallax/buffer"
)

// An Element is a node's behaviour: a value implementing exactly one of
// [Source], [Transform], [Sink] or [Runner], plus any of the optional
// interfaces ([Starter], io.Closer, [PadDeclarer], [TypeDeclarer],
// [AllocatorProvider], [AllocationForwarder], [AllocatorUser]).
//
// The executor calls an element's methods from the node's one goroutine
// only, so an element needs no locking for its own state; values it exposes
// to other goroutines (counters, results) must be synchronised.
type Element any

// A Source produces buffers until the end of the stream, which it reports
// with io.EOF. Produce must return promptly when ctx is cancelled. The
// caller owns the returned buffer.
type Source interface {
	Produce(ctx context.Context) (*buffer.Buffer, error)
}

// A Transform processes one buffer: it passes it on (returns b), replaces it
// (releases b and returns another) or drops it (releases b and returns nil).
// Process takes ownership of b whatever it returns, errors included. It may
// return io.EOF to end the stream early.
type Transform interface {
	Process(ctx context.Context, b *buffer.Buffer) (*buffer.Buffer, error)
}

// A Sink consumes buffers. Consume takes ownership of b (it must release it,
// or hand it on). It may return io.EOF to say it wants no more buffers; the
// pipeline ends when every sink has finished.
type Sink interface {
	Consume(ctx context.Context, b *buffer.Buffer) error
}

// A Runner is the general element: it drives its own pads (any number of
// inputs and outputs; tee, funnel and queue are Runners). Run returns when
// its inputs are exhausted (nil), on error, or when ctx is cancelled; the
// executor then closes its outputs, which is end of stream downstream.
// A Runner must implement [PadDeclarer].
type Runner interface {
	Run(ctx context.Context, p *Pads) error
}

// A Starter is prepared before the pipeline runs (open files, connect).
// Start is called on every element, sinks first, before any buffer flows;
// an error aborts the start. io.Closer, if implemented, is called after the
// node finished (or when a later Start failed), exactly once.
type Starter interface {
	Start(ctx context.Context) error
}

// Unlimited is a pad count without an upper bound.
const Unlimited = -1

// PadSpec says how many input and output links a node accepts.
type PadSpec struct {
	MinIn, MaxIn   int // MaxIn may be Unlimited
	MinOut, MaxOut int // MaxOut may be Unlimited
}

// A PadDeclarer overrides the pad counts implied by its interface (a Source
// has exactly one output, a Transform one input and one output, a Sink one
// input).
type PadDeclarer interface {
	PadSpec() PadSpec
}

// A TypeDeclarer names the payload type of its input and output ("" or
// [AnyType] accepts anything). A link between an output of type A and an
// input of type B is rejected at validation unless one is AnyType or A == B.
type TypeDeclarer interface {
	PadTypes() (in, out string)
}

// AnyType is the type name compatible with every type.
const AnyType = "any"

// An AllocatorProvider offers the allocator its input buffers should come
// from (like a GStreamer ALLOCATION query answer): an IPC sink hands out
// chunks of its shared pool so upstream writes straight into them. The
// executor asks after Start and before any buffer flows.
type AllocatorProvider interface {
	ProvideAllocator() buffer.Allocator
}

// An AllocationForwarder passes buffers downstream unchanged (identity,
// queue, tee): the allocation query travels through it to its downstream
// elements. ForwardsAllocation may depend on properties.
type AllocationForwarder interface {
	ForwardsAllocation() bool
}

// An AllocatorUser receives the allocator negotiated for its output: the
// first [AllocatorProvider] found downstream through forwarding elements, or
// the pipeline's default allocator. It is called after the element's Start.
type AllocatorUser interface {
	UseAllocator(a buffer.Allocator)
}

func padSpecOf(e Element) PadSpec {
	if d, ok := e.(PadDeclarer); ok {
		return d.PadSpec()
	}
	switch e.(type) {
	case Source:
		return PadSpec{MinOut: 1, MaxOut: 1}
	case Transform:
		return PadSpec{MinIn: 1, MaxIn: 1, MinOut: 1, MaxOut: 1}
	case Sink:
		return PadSpec{MinIn: 1, MaxIn: 1}
	}
	return PadSpec{MaxIn: Unlimited, MaxOut: Unlimited}
}

func padTypesOf(e Element) (in, out string) {
	if d, ok := e.(TypeDeclarer); ok {
		in, out = d.PadTypes()
	}
	if in == "" {
		in = AnyType
	}
	if out == "" {
		out = AnyType
	}
	return in, out
}

func kindOf(e Element) string {
	switch e.(type) {
	case Runner:
		return "runner"
	case Source:
		return "source"
	case Transform:
		return "transform"
	case Sink:
		return "sink"
	}
	return ""
}
