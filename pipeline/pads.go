package pipeline

import (
	"errors"

	"github.com/parallax-ipc/parallax/buffer"
)

// ErrStopped is returned by [Pads.Push] when the pipeline is stopping; the
// element should return (its return value is then ignored).
var ErrStopped = errors.New("pipeline stopping")

// Pads are a running node's links: input channels (closed at end of stream),
// output channels, the stop signal, the negotiated allocator and the event
// bus. The executor gives them to a [Runner]; they are valid only during Run
// and must not be used from other goroutines than the ones Run starts and
// joins before returning.
type Pads struct {
	nr    *nodeRun
	in    []chan *buffer.Buffer
	out   []chan *buffer.Buffer
	done  <-chan struct{}
	alloc buffer.Allocator
}

// Name returns the node's name.
func (p *Pads) Name() string { return p.nr.n.name }

// NumIn returns the number of input links.
func (p *Pads) NumIn() int { return len(p.in) }

// NumOut returns the number of output links.
func (p *Pads) NumOut() int { return len(p.out) }

// In returns input i. It is closed at end of stream; received buffers
// belong to the receiver.
func (p *Pads) In(i int) <-chan *buffer.Buffer { return p.in[i] }

// Out returns output i for use in a select; a Runner sending on it directly
// calls [Pads.Sent] after each successful send. Never close it.
func (p *Pads) Out(i int) chan<- *buffer.Buffer { return p.out[i] }

// Done is closed when the pipeline stops (error, Stop, cancellation, or every
// sink finished).
func (p *Pads) Done() <-chan struct{} { return p.done }

// Allocator returns the allocator negotiated for this node's output.
func (p *Pads) Allocator() buffer.Allocator { return p.alloc }

// Recv receives from input i. ok is false at end of stream or when the
// pipeline stops.
func (p *Pads) Recv(i int) (b *buffer.Buffer, ok bool) {
	// Fast path: a plain receive when a buffer waits (no select on done).
	select {
	case b, ok = <-p.in[i]:
		return b, ok
	default:
	}
	select {
	case b, ok = <-p.in[i]:
		return b, ok
	case <-p.done:
		return nil, false
	}
}

// Push sends b on output i, blocking while the link is full (backpressure).
// It takes ownership of b. When the pipeline stops first it releases b and
// returns [ErrStopped].
func (p *Pads) Push(i int, b *buffer.Buffer) error {
	n := b.Len()
	select {
	case p.out[i] <- b:
	default:
		select {
		case p.out[i] <- b:
		case <-p.done:
			b.Release()
			return ErrStopped
		}
	}
	p.nr.count(n)
	return nil
}

// send is Push to every output (clones to all but the first) without
// counting; it reports false when the pipeline stopped.
func (p *Pads) send(b *buffer.Buffer) bool {
	for i := len(p.out) - 1; i >= 0; i-- {
		c := b
		if i > 0 {
			c = b.Clone()
		}
		select {
		case p.out[i] <- c:
			continue
		default:
		}
		select {
		case p.out[i] <- c:
		case <-p.done:
			c.Release()
			if i > 0 {
				b.Release()
			}
			return false
		}
	}
	return true
}

// Sent counts a buffer of n bytes sent directly on an [Pads.Out] channel in
// the node's statistics.
func (p *Pads) Sent(n int) { p.nr.count(n) }

// Post publishes a custom event from this node.
func (p *Pads) Post(name string, value any) {
	p.nr.p.bus.publish(Event{Kind: EventCustom, Node: p.nr.n.name, Name: name, Value: value})
}
