package elements

import (
	"context"
	"fmt"
	"sync/atomic"

	"github.com/parallax-ipc/parallax/buffer"
	"github.com/parallax-ipc/parallax/pipeline"
)

// Leaky modes of [Queue].
const (
	LeakyNo         = "no"         // block upstream when full (backpressure)
	LeakyUpstream   = "upstream"   // drop the incoming buffer when full
	LeakyDownstream = "downstream" // drop the oldest queued buffer when full
)

// Queue holds up to MaxSize buffers (0: 200) between its upstream and
// downstream, decoupling their pace. When full it blocks upstream, or drops
// buffers according to Leaky; Dropped counts them. It forwards allocation.
type Queue struct {
	MaxSize int
	Leaky   string

	dropped atomic.Uint64
}

var queueFactory = pipeline.Factory{
	Name: "queue", Kind: "transform",
	Description: "Bounded queue decoupling upstream and downstream, optionally leaky",
	Properties: []pipeline.PropSpec{
		{Name: "max-size-buffers", Type: pipeline.PropInt, Default: "200", Description: "capacity in buffers", Min: 1, Max: 1 << 24},
		{Name: "leaky", Type: pipeline.PropEnum, Default: LeakyNo, Enum: []string{LeakyNo, LeakyUpstream, LeakyDownstream}, Description: "what to do when full"},
	},
	New: func(p *pipeline.Props) (pipeline.Element, error) {
		return &Queue{MaxSize: int(p.Int("max-size-buffers")), Leaky: p.String("leaky")}, nil
	},
}

// PadSpec implements [pipeline.PadDeclarer].
func (*Queue) PadSpec() pipeline.PadSpec {
	return pipeline.PadSpec{MinIn: 1, MaxIn: 1, MinOut: 1, MaxOut: 1}
}

// ForwardsAllocation implements [pipeline.AllocationForwarder].
func (*Queue) ForwardsAllocation() bool { return true }

// Dropped returns how many buffers a leaky queue dropped.
func (q *Queue) Dropped() uint64 { return q.dropped.Load() }

// Run implements [pipeline.Runner].
func (q *Queue) Run(_ context.Context, p *pipeline.Pads) error {
	size := q.MaxSize
	if size <= 0 {
		size = 200
	}
	leaky := q.Leaky
	if leaky == "" {
		leaky = LeakyNo
	}
	switch leaky {
	case LeakyNo, LeakyUpstream, LeakyDownstream:
	default:
		return fmt.Errorf("unknown leaky mode %q", leaky)
	}
	ring := make([]*buffer.Buffer, size)
	head, n := 0, 0
	in, out := p.In(0), p.Out(0)
	defer func() {
		for ; n > 0; n-- {
			ring[head].Release()
			head = (head + 1) % size
		}
	}()
	for {
		recv := in
		if n == size && leaky == LeakyNo {
			recv = nil
		}
		var send chan<- *buffer.Buffer
		var front *buffer.Buffer
		var frontLen int
		if n > 0 {
			send, front = out, ring[head]
			frontLen = front.Len()
		}
		if recv == nil && send == nil {
			return nil // input ended and queue drained
		}
		select {
		case b, ok := <-recv:
			if !ok {
				in = nil
				continue
			}
			if n == size {
				q.dropped.Add(1)
				if leaky == LeakyUpstream {
					b.Release()
					continue
				}
				ring[head].Release() // downstream-leaky: drop the oldest
				head = (head + 1) % size
				n--
			}
			ring[(head+n)%size] = b
			n++
		case send <- front:
			ring[head] = nil
			head = (head + 1) % size
			n--
			p.Sent(frontLen)
		case <-p.Done():
			return nil
		}
	}
}
