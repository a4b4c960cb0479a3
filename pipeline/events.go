package pipeline

import (
	"fmt"
	"sync"
	"sync/atomic"
	"time"
)

// EventKind says what an [Event] reports.
type EventKind uint8

// Event kinds.
const (
	EventStarted      EventKind = iota + 1 // the pipeline runs
	EventStopped                           // the pipeline stopped (last event)
	EventStateChanged                      // Old -> New
	EventEOS                               // every sink reached end of stream
	EventError                             // Node failed with Err
	EventBuffers                           // Node has processed Buffers buffers, Bytes bytes so far
	EventNodeStarted                       // Node's goroutine runs
	EventNodeFinished                      // Node finished after Buffers buffers
	EventCustom                            // Node posted Name, Value
)

var kindNames = [...]string{"", "started", "stopped", "state-changed", "eos", "error", "buffers", "node-started", "node-finished", "custom"}

// String returns the kind's name.
func (k EventKind) String() string {
	if int(k) < len(kindNames) && k != 0 {
		return kindNames[k]
	}
	return fmt.Sprintf("event(%d)", k)
}

// An Event is one notification of a running pipeline. It is a plain value.
type Event struct {
	Kind     EventKind
	Time     time.Time
	Node     string // node concerned, if any
	Old, New State  // EventStateChanged
	Buffers  uint64 // EventBuffers, EventNodeFinished
	Bytes    uint64 // EventBuffers, EventNodeFinished
	Err      error  // EventError
	Name     string // EventCustom
	Value    any    // EventCustom
}

// String formats the event on one line.
func (e Event) String() string {
	s := e.Kind.String()
	if e.Node != "" {
		s += " node=" + e.Node
	}
	switch e.Kind {
	case EventStateChanged:
		s += fmt.Sprintf(" %v->%v", e.Old, e.New)
	case EventBuffers, EventNodeFinished:
		s += fmt.Sprintf(" buffers=%d bytes=%d", e.Buffers, e.Bytes)
	case EventError:
		s += fmt.Sprintf(" err=%v", e.Err)
	case EventCustom:
		s += fmt.Sprintf(" %s=%v", e.Name, e.Value)
	}
	return s
}

// A Listener receives a pipeline's events on C. Events are delivered without
// ever blocking the pipeline: when C is full the event is dropped and
// counted in Lost. C is closed after the pipeline's EventStopped, also for a
// listener that unsubscribed with Close. Lost and Close are safe for
// concurrent use.
type Listener struct {
	// C delivers the events in order.
	C <-chan Event

	c      chan Event
	lost   atomic.Uint64
	bus    *bus
	closed bool // under bus.mu
}

// Lost returns how many events were dropped because C was full.
func (l *Listener) Lost() uint64 { return l.lost.Load() }

// Close unsubscribes l: no further event is sent on C, which closes when the
// pipeline stops. It is idempotent.
func (l *Listener) Close() { l.bus.remove(l) }

// bus broadcasts events. Publishing reads an immutable listener list behind
// an atomic pointer (no lock); subscribing and closing copy it under mu.
type bus struct {
	mu        sync.Mutex // guards copies of list, all, closedBus, Listener.closed
	list      atomic.Pointer[[]*Listener]
	all       []*Listener // every subscriber, closed by close
	closedBus bool
}

func (b *bus) subscribe(size int) *Listener {
	if size < 1 {
		size = 1
	}
	c := make(chan Event, size)
	l := &Listener{C: c, c: c, bus: b}
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.closedBus {
		l.closed = true
		close(c)
		return l
	}
	old := b.load()
	next := append(append(make([]*Listener, 0, len(old)+1), old...), l)
	b.list.Store(&next)
	b.all = append(b.all, l)
	return l
}

func (b *bus) load() []*Listener {
	if p := b.list.Load(); p != nil {
		return *p
	}
	return nil
}

func (b *bus) remove(l *Listener) {
	b.mu.Lock()
	defer b.mu.Unlock()
	old := b.load()
	next := make([]*Listener, 0, len(old))
	for _, x := range old {
		if x != l {
			next = append(next, x)
		}
	}
	b.list.Store(&next)
}

// publish delivers e to every listener without blocking.
func (b *bus) publish(e Event) {
	ls := b.load()
	if len(ls) == 0 {
		return
	}
	if e.Time.IsZero() {
		e.Time = time.Now()
	}
	for _, l := range ls {
		select {
		case l.c <- e:
		default:
			l.lost.Add(1)
		}
	}
}

// close closes every listener's channel; later subscribers get a closed
// channel. It must run when nothing publishes any more (every node
// goroutine has exited).
func (b *bus) close() {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.closedBus = true
	b.list.Store(&[]*Listener{})
	for _, l := range b.all {
		if !l.closed {
			l.closed = true
			close(l.c)
		}
	}
}
