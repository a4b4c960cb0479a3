package pipeline

import (
	"context"
	"errors"
	"fmt"
	"io"
	"sync"
	"sync/atomic"

	"github.com/parallax-ipc/parallax/buffer"
)

// State is a pipeline's life-cycle state.
type State int32

// Pipeline states, in order; a pipeline runs once.
const (
	StateReady   State = iota // built, not started
	StateRunning              // started, nodes running
	StateStopped              // every node finished
)

// String returns the state's name.
func (s State) String() string {
	switch s {
	case StateReady:
		return "ready"
	case StateRunning:
		return "running"
	case StateStopped:
		return "stopped"
	}
	return fmt.Sprintf("state(%d)", int32(s))
}

// ErrState reports an operation not allowed in the pipeline's state (for
// example starting it twice).
var ErrState = errors.New("wrong pipeline state")

// A NodeError reports the failure of one node; the first one stops the
// pipeline.
type NodeError struct {
	Node string
	Err  error
}

func (e *NodeError) Error() string { return fmt.Sprintf("node %q: %v", e.Node, e.Err) }

// Unwrap returns the element's error.
func (e *NodeError) Unwrap() error { return e.Err }

// DefaultProgressEvery is how many buffers a node processes between two
// [EventBuffers] when [Options].ProgressEvery is 0.
const DefaultProgressEvery = 4096

// Options configure a [Pipeline]. The zero value is the default.
type Options struct {
	// Allocator serves nodes for which no downstream element provides
	// one. nil means a [buffer.Pool] with default classes, created at
	// Start and closed when the pipeline stops.
	Allocator buffer.Allocator
	// ProgressEvery is how many buffers a node processes between two
	// EventBuffers; 0 means DefaultProgressEvery.
	ProgressEvery uint64
}

// NodeStats counts what one node has processed: buffers (and bytes) it
// output, summed over its outputs (a tee with two outputs counts each buffer
// twice), or, for a node without outputs, consumed. Counts of a node's own
// loop are published every few hundred buffers and when it finishes.
type NodeStats struct {
	Name     string
	Buffers  uint64
	Bytes    uint64
	Finished bool
}

type nodeRun struct {
	p     *Pipeline
	n     *node
	pads  Pads
	sink  bool
	every uint64

	_        [64]byte
	buffers  atomic.Uint64
	bytes    atomic.Uint64
	finished atomic.Bool
	_        [64]byte
}

// count adds a buffer of n bytes to the node's counters; safe for
// concurrent use (a Runner may push from several goroutines).
func (nr *nodeRun) count(n int) {
	nr.bytes.Add(uint64(n))
	if c := nr.buffers.Add(1); c%nr.every == 0 {
		nr.progress(c)
	}
}

func (nr *nodeRun) progress(c uint64) {
	nr.p.bus.publish(Event{Kind: EventBuffers, Node: nr.n.name, Buffers: c, Bytes: nr.bytes.Load()})
}

// localCount batches the counting of a node's own loop (one goroutine) and
// flushes it to the shared counters every flushEvery buffers, so the data
// path makes no atomic operation per buffer for statistics.
type localCount struct {
	nr             *nodeRun
	buffers, bytes uint64
}

const flushEvery = 256

func (l *localCount) add(n int) {
	l.buffers++
	l.bytes += uint64(n)
	if l.buffers >= min(flushEvery, l.nr.every) {
		l.flush()
	}
}

func (l *localCount) flush() {
	if l.buffers == 0 {
		return
	}
	before := l.nr.buffers.Load()
	l.nr.bytes.Add(l.bytes)
	after := l.nr.buffers.Add(l.buffers)
	if after/l.nr.every != before/l.nr.every {
		l.nr.progress(after)
	}
	l.buffers, l.bytes = 0, 0
}

// Pipeline runs a [Graph]: one goroutine per node, joined by bounded
// channels (one per link). It goes from ready to running (Start) to stopped
// (when every sink reached end of stream, on the first error, on Stop or
// when Start's context is cancelled), once.
//
// Use [New]; the zero value is invalid. A Pipeline is safe for concurrent
// use; it must not be copied.
type Pipeline struct {
	g     *Graph
	opts  Options
	bus   bus
	state atomic.Int32
	nodes []*nodeRun

	cancel    context.CancelCauseFunc
	ctx       context.Context
	wg        sync.WaitGroup
	finished  chan struct{}
	sinksLeft atomic.Int32
	ownPool   *buffer.Pool

	mu      sync.Mutex // guards err, eos, stopped
	err     error
	eos     bool
	stopped bool
}

var (
	errEOS      = errors.New("end of stream")
	errStopCall = errors.New("stopped")
)

// New validates g and returns a pipeline ready to start.
func New(g *Graph, opts Options) (*Pipeline, error) {
	if err := g.Validate(); err != nil {
		return nil, err
	}
	if opts.ProgressEvery == 0 {
		opts.ProgressEvery = DefaultProgressEvery
	}
	p := &Pipeline{g: g, opts: opts, finished: make(chan struct{})}
	for _, n := range g.order {
		nr := &nodeRun{p: p, n: n, sink: len(n.outs) == 0, every: opts.ProgressEvery}
		nr.pads.nr = nr
		p.nodes = append(p.nodes, nr)
	}
	return p, nil
}

// Run builds, starts and waits for a pipeline over g.
func Run(ctx context.Context, g *Graph, opts Options) error {
	p, err := New(g, opts)
	if err != nil {
		return err
	}
	if err := p.Start(ctx); err != nil {
		return err
	}
	return p.Wait()
}

// Events subscribes a listener with room for size events. Subscribe before
// Start to see every event.
func (p *Pipeline) Events(size int) *Listener { return p.bus.subscribe(size) }

// State returns the current state.
func (p *Pipeline) State() State { return State(p.state.Load()) }

// Stats returns every node's counters, in the graph's node order.
func (p *Pipeline) Stats() []NodeStats {
	s := make([]NodeStats, len(p.nodes))
	for i, nr := range p.nodes {
		s[i] = NodeStats{Name: nr.n.name, Buffers: nr.buffers.Load(), Bytes: nr.bytes.Load(), Finished: nr.finished.Load()}
	}
	return s
}

// Allocator returns the allocator negotiated for the named node's output
// (after Start), or nil.
func (p *Pipeline) Allocator(node string) buffer.Allocator {
	for _, nr := range p.nodes {
		if nr.n.name == node {
			return nr.pads.alloc
		}
	}
	return nil
}

// Start prepares every element (sinks first), negotiates allocators and
// starts the nodes. Cancelling ctx stops the pipeline; Wait then returns the
// context's error.
func (p *Pipeline) Start(ctx context.Context) (err error) {
	if !p.state.CompareAndSwap(int32(StateReady), int32(StateRunning)) {
		return fmt.Errorf("start pipeline: %w (%v)", ErrState, p.State())
	}
	p.ctx, p.cancel = context.WithCancelCause(ctx)
	done := p.ctx.Done()
	chans := make([]chan *buffer.Buffer, len(p.g.links))
	for i, l := range p.g.links {
		c := l.Options.Capacity
		if c == 0 {
			c = DefaultCapacity
		}
		chans[i] = make(chan *buffer.Buffer, c)
	}
	def := p.opts.Allocator
	if def == nil {
		if p.ownPool, err = buffer.NewPool(buffer.PoolOptions{}); err != nil {
			p.abortStart()
			return fmt.Errorf("start pipeline: %w", err)
		}
		def = p.ownPool
	}
	byNode := map[*node]*nodeRun{}
	for _, nr := range p.nodes {
		byNode[nr.n] = nr
		nr.pads.done = done
		for _, li := range nr.n.ins {
			nr.pads.in = append(nr.pads.in, chans[li])
		}
		for _, li := range nr.n.outs {
			nr.pads.out = append(nr.pads.out, chans[li])
		}
		if nr.sink {
			p.sinksLeft.Add(1)
		}
	}
	order := p.g.topo()
	var started []*nodeRun
	for i := len(order) - 1; i >= 0; i-- {
		nr := byNode[order[i]]
		if s, ok := nr.n.elem.(Starter); ok {
			if err := s.Start(p.ctx); err != nil {
				for _, st := range started {
					_ = closeElement(st.n.elem)
				}
				_ = closeElement(nr.n.elem)
				p.abortStart()
				return &NodeError{Node: nr.n.name, Err: fmt.Errorf("start: %w", err)}
			}
		}
		started = append(started, nr)
		nr.pads.alloc = p.negotiate(nr.n, def)
		if u, ok := nr.n.elem.(AllocatorUser); ok {
			u.UseAllocator(nr.pads.alloc)
		}
	}
	p.bus.publish(Event{Kind: EventStateChanged, Old: StateReady, New: StateRunning})
	p.bus.publish(Event{Kind: EventStarted})
	p.wg.Add(len(p.nodes))
	for _, nr := range p.nodes {
		go p.runNode(nr)
	}
	go p.supervise()
	return nil
}

func (p *Pipeline) abortStart() {
	p.cancel(errStopCall)
	if p.ownPool != nil {
		p.ownPool.Close()
	}
	p.state.Store(int32(StateStopped))
	p.bus.close()
	close(p.finished)
}

// negotiate answers the allocation query for n's output: the first
// provider downstream, looking through forwarding elements, else def.
func (p *Pipeline) negotiate(n *node, def buffer.Allocator) buffer.Allocator {
	for _, li := range n.outs {
		if a := p.query(p.g.nodes[p.g.links[li].To]); a != nil {
			return a
		}
	}
	return def
}

func (p *Pipeline) query(m *node) buffer.Allocator {
	if ap, ok := m.elem.(AllocatorProvider); ok {
		if a := ap.ProvideAllocator(); a != nil {
			return a
		}
	}
	if f, ok := m.elem.(AllocationForwarder); ok && f.ForwardsAllocation() {
		for _, li := range m.outs {
			if a := p.query(p.g.nodes[p.g.links[li].To]); a != nil {
				return a
			}
		}
	}
	return nil
}

func closeElement(e Element) error {
	if c, ok := e.(io.Closer); ok {
		return c.Close()
	}
	return nil
}

func (p *Pipeline) runNode(nr *nodeRun) {
	defer p.wg.Done()
	name := nr.n.name
	p.bus.publish(Event{Kind: EventNodeStarted, Node: name})
	err := p.loop(nr)
	if cerr := closeElement(nr.n.elem); err == nil || errors.Is(err, io.EOF) {
		if cerr != nil {
			err = fmt.Errorf("close: %w", cerr)
		}
	}
	// A failure is recorded before the outputs close: downstream reads
	// closed inputs as end of stream, and a sink that finished by it would
	// otherwise end the pipeline "successfully" first, hiding the error.
	failed := err != nil && !errors.Is(err, io.EOF) && !errors.Is(err, ErrStopped)
	if failed {
		p.fail(name, err)
	}
	for _, o := range nr.pads.out {
		close(o)
	}
	nr.finished.Store(true)
	p.bus.publish(Event{Kind: EventNodeFinished, Node: name, Buffers: nr.buffers.Load(), Bytes: nr.bytes.Load()})
	if !failed && nr.sink && p.ctx.Err() == nil { // finished by end of stream, not by a stop
		if p.sinksLeft.Add(-1) == 0 {
			p.endOfStream()
		}
	}
	// Keep upstream flowing (a tee may feed other branches) until it ends.
	for _, in := range nr.pads.in {
		for b := range in {
			b.Release()
		}
	}
}

func (p *Pipeline) loop(nr *nodeRun) error {
	ctx, pads := p.ctx, &nr.pads
	lc := localCount{nr: nr}
	defer lc.flush()
	switch e := nr.n.elem.(type) {
	case Runner:
		return e.Run(ctx, pads)
	case Source:
		for {
			select {
			case <-pads.done:
				return nil
			default:
			}
			b, err := e.Produce(ctx)
			if err != nil {
				return err
			}
			if b == nil {
				continue
			}
			n := b.Len()
			if !pads.send(b) {
				return nil
			}
			lc.add(n)
		}
	case Transform:
		for {
			b, ok := pads.Recv(0)
			if !ok {
				return nil
			}
			out, err := e.Process(ctx, b)
			if err != nil {
				if out != nil {
					out.Release()
				}
				return err
			}
			if out == nil {
				continue
			}
			n := out.Len()
			if len(pads.out) == 0 { // a transform used as a sink
				out.Release()
			} else if !pads.send(out) {
				return nil
			}
			lc.add(n)
		}
	case Sink:
		for {
			b, ok := pads.Recv(0)
			if !ok {
				return nil
			}
			lc.add(b.Len())
			if err := e.Consume(ctx, b); err != nil {
				return err
			}
		}
	}
	return fmt.Errorf("%T: %w", nr.n.elem, ErrNotElement)
}

// fail records the first error and stops the pipeline. Errors after the
// pipeline began stopping are consequences of the stop and ignored.
func (p *Pipeline) fail(node string, err error) {
	p.mu.Lock()
	first := p.err == nil && !p.eos && !p.stopped && p.ctx.Err() == nil
	if first {
		p.err = &NodeError{Node: node, Err: err}
	}
	p.mu.Unlock()
	if first {
		p.bus.publish(Event{Kind: EventError, Node: node, Err: err})
		p.cancel(p.err)
	}
}

func (p *Pipeline) endOfStream() {
	p.mu.Lock()
	first := p.err == nil && !p.stopped && !p.eos
	p.eos = p.eos || first
	p.mu.Unlock()
	if first {
		p.bus.publish(Event{Kind: EventEOS})
	}
	p.cancel(errEOS)
}

func (p *Pipeline) supervise() {
	p.wg.Wait()
	for _, nr := range p.nodes { // every sender has closed its outputs
		for _, in := range nr.pads.in {
			for b := range in {
				b.Release()
			}
		}
	}
	p.cancel(errStopCall)
	if p.ownPool != nil {
		// Fails with ErrInUse when an element leaked buffers; the segment
		// then stays mapped (safe) until the pool becomes unreachable.
		_ = p.ownPool.Close()
	}
	p.state.Store(int32(StateStopped))
	p.bus.publish(Event{Kind: EventStateChanged, Old: StateRunning, New: StateStopped})
	p.bus.publish(Event{Kind: EventStopped})
	p.bus.close()
	close(p.finished)
}

// Wait blocks until the pipeline stopped and returns why: nil at end of
// stream or after Stop, the first [*NodeError], or the cause of the start
// context's cancellation. Wait on a pipeline never started returns at once
// with an error wrapping [ErrState].
func (p *Pipeline) Wait() error {
	if p.State() == StateReady {
		return fmt.Errorf("wait for pipeline: %w (ready)", ErrState)
	}
	<-p.finished
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.err != nil {
		return p.err
	}
	if p.eos || p.stopped {
		return nil
	}
	if cause := context.Cause(p.ctx); cause != nil && cause != errStopCall && cause != errEOS {
		return cause
	}
	return nil
}

// Stop stops a running pipeline and waits for it; it returns nil unless a
// node failed before the stop. Stop on a stopped pipeline returns Wait's
// result.
func (p *Pipeline) Stop() error {
	if p.State() == StateReady {
		return fmt.Errorf("stop pipeline: %w (ready)", ErrState)
	}
	p.mu.Lock()
	if p.err == nil && !p.eos && p.ctx.Err() == nil {
		p.stopped = true
	}
	p.mu.Unlock()
	p.cancel(errStopCall)
	return p.Wait()
}

// Done is closed when the pipeline has stopped.
func (p *Pipeline) Done() <-chan struct{} { return p.finished }
