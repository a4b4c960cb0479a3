package elements

import (
	"context"
	"fmt"
	"io"
	"time"

	"github.com/parallax-ipc/parallax/buffer"
	"github.com/parallax-ipc/parallax/pipeline"
)

// FakeSink releases every buffer, after Delay if set, and finishes after
// NumBuffers buffers (0: never). Read Buffers and Bytes after the pipeline
// stopped (while it runs, [pipeline.Pipeline.Stats] has the same counts).
type FakeSink struct {
	Delay      time.Duration
	NumBuffers int64

	buffers, bytes uint64
	pace           pacer
}

var fakeSinkFactory = pipeline.Factory{
	Name: "fakesink", Kind: "sink",
	Description: "Releases buffers, optionally slowly",
	Properties: []pipeline.PropSpec{
		{Name: "delay", Type: pipeline.PropDuration, Default: "0s", Description: "sleep per buffer (simulates a slow consumer)"},
		{Name: "num-buffers", Type: pipeline.PropInt, Default: "-1", Description: "buffers before finishing (-1 or 0: unlimited)"},
	},
	New: func(p *pipeline.Props) (pipeline.Element, error) {
		return &FakeSink{Delay: p.Duration("delay"), NumBuffers: p.Int("num-buffers")}, nil
	},
}

// Consume implements [pipeline.Sink].
func (s *FakeSink) Consume(ctx context.Context, b *buffer.Buffer) error {
	s.bytes += uint64(b.Len())
	b.Release()
	if err := s.pace.sleep(ctx, s.Delay); err != nil {
		return err
	}
	s.buffers++
	if s.NumBuffers > 0 && s.buffers >= uint64(s.NumBuffers) {
		return io.EOF
	}
	return nil
}

// Buffers returns how many buffers were consumed.
func (s *FakeSink) Buffers() uint64 { return s.buffers }

// Bytes returns how many bytes were consumed.
func (s *FakeSink) Bytes() uint64 { return s.bytes }

// Identity passes buffers unchanged. With ErrorAfter > 0 it fails on that
// buffer; with SleepTime it sleeps per buffer. It forwards allocation.
type Identity struct {
	ErrorAfter int64
	SleepTime  time.Duration

	n    int64
	pace pacer
}

var identityFactory = pipeline.Factory{
	Name: "identity", Kind: "transform",
	Description: "Passes buffers unchanged (optionally sleeping or failing, for tests)",
	Properties: []pipeline.PropSpec{
		{Name: "error-after", Type: pipeline.PropInt, Default: "0", Description: "fail on this buffer (0: never)"},
		{Name: "sleep-time", Type: pipeline.PropDuration, Default: "0s", Description: "sleep per buffer"},
	},
	New: func(p *pipeline.Props) (pipeline.Element, error) {
		return &Identity{ErrorAfter: p.Int("error-after"), SleepTime: p.Duration("sleep-time")}, nil
	},
}

// Process implements [pipeline.Transform].
func (e *Identity) Process(ctx context.Context, b *buffer.Buffer) (*buffer.Buffer, error) {
	e.n++
	if e.ErrorAfter > 0 && e.n >= e.ErrorAfter {
		b.Release()
		return nil, fmt.Errorf("error-after: failing on buffer %d as configured", e.n)
	}
	if e.SleepTime > 0 {
		if err := e.pace.sleep(ctx, e.SleepTime); err != nil {
			b.Release()
			return nil, err
		}
	}
	return b, nil
}

// ForwardsAllocation implements [pipeline.AllocationForwarder].
func (e *Identity) ForwardsAllocation() bool { return true }
