package elements

import (
	"context"
	"time"

	"github.com/parallax-ipc/parallax/buffer"
	"github.com/parallax-ipc/parallax/pipeline"
)

// RateLimit passes buffers on no faster than Rate buffers per second and
// BytesPerSecond bytes per second (each 0: unlimited), by delaying them.
// It forwards allocation.
type RateLimit struct {
	Rate           float64
	BytesPerSecond int64

	n, bytes uint64
	pace     pacer
}

var rateLimitFactory = pipeline.Factory{
	Name: "ratelimit", Kind: "transform",
	Description: "Caps the buffer rate and/or byte rate by delaying buffers",
	Properties: []pipeline.PropSpec{
		{Name: "rate", Type: pipeline.PropFloat, Default: "0", Description: "buffers per second (0: unlimited)", Min: 0, Max: 1e9},
		{Name: "bytes-per-second", Type: pipeline.PropBytes, Default: "0", Description: "bytes per second (0: unlimited)"},
	},
	New: func(p *pipeline.Props) (pipeline.Element, error) {
		return &RateLimit{Rate: p.Float("rate"), BytesPerSecond: p.Bytes("bytes-per-second")}, nil
	},
}

// ForwardsAllocation implements [pipeline.AllocationForwarder].
func (*RateLimit) ForwardsAllocation() bool { return true }

// Process implements [pipeline.Transform].
func (r *RateLimit) Process(ctx context.Context, b *buffer.Buffer) (*buffer.Buffer, error) {
	var due time.Duration
	if r.Rate > 0 {
		due = rateOffset(r.n, r.Rate)
	}
	if r.BytesPerSecond > 0 {
		due = max(due, rateOffset(r.bytes, float64(r.BytesPerSecond)))
	}
	r.n++
	r.bytes += uint64(b.Len())
	if due > 0 || r.pace.start.IsZero() {
		if err := r.pace.waitUntil(ctx, due); err != nil {
			b.Release()
			return nil, err
		}
	}
	return b, nil
}
