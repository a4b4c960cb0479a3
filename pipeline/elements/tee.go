package elements

import (
	"context"

	"github.com/parallax-ipc/parallax/pipeline"
)

// Tee sends every input buffer to each of its outputs: O(1) clones sharing
// the bytes. It runs at the pace of its slowest branch; put a queue on a
// branch to decouple it. It forwards allocation to its first branch that
// answers.
type Tee struct{}

var teeFactory = pipeline.Factory{
	Name: "tee", Kind: "tee",
	Description: "Sends each buffer to every output (O(1) clones, no copy)",
	New:         func(*pipeline.Props) (pipeline.Element, error) { return &Tee{}, nil },
}

// PadSpec implements [pipeline.PadDeclarer]: one input, one or more outputs.
func (*Tee) PadSpec() pipeline.PadSpec {
	return pipeline.PadSpec{MinIn: 1, MaxIn: 1, MinOut: 1, MaxOut: pipeline.Unlimited}
}

// ForwardsAllocation implements [pipeline.AllocationForwarder].
func (*Tee) ForwardsAllocation() bool { return true }

// Run implements [pipeline.Runner].
func (*Tee) Run(_ context.Context, p *pipeline.Pads) error {
	for {
		b, ok := p.Recv(0)
		if !ok {
			return nil
		}
		for i := 1; i < p.NumOut(); i++ {
			if p.Push(i, b.Clone()) != nil {
				b.Release()
				return nil
			}
		}
		if p.Push(0, b) != nil {
			return nil
		}
	}
}

// Funnel merges its inputs into one output in arrival order. It forwards
// allocation.
type Funnel struct{}

var funnelFactory = pipeline.Factory{
	Name: "funnel", Kind: "funnel",
	Description: "Merges many inputs into one output",
	New:         func(*pipeline.Props) (pipeline.Element, error) { return &Funnel{}, nil },
}

// PadSpec implements [pipeline.PadDeclarer]: one or more inputs, one output.
func (*Funnel) PadSpec() pipeline.PadSpec {
	return pipeline.PadSpec{MinIn: 1, MaxIn: pipeline.Unlimited, MinOut: 1, MaxOut: 1}
}

// ForwardsAllocation implements [pipeline.AllocationForwarder].
func (*Funnel) ForwardsAllocation() bool { return true }

// Run implements [pipeline.Runner]: one forwarding goroutine per input,
// joined before it returns.
func (*Funnel) Run(_ context.Context, p *pipeline.Pads) error {
	done := make(chan struct{}, p.NumIn())
	for i := range p.NumIn() {
		go func() {
			defer func() { done <- struct{}{} }()
			for {
				b, ok := p.Recv(i)
				if !ok || p.Push(0, b) != nil {
					return
				}
			}
		}()
	}
	for range p.NumIn() {
		<-done
	}
	return nil
}
