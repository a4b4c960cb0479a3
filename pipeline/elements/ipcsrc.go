package elements

import (
	"context"
	"errors"
	"fmt"
	"io"
	"sync/atomic"
	"time"

	"github.com/parallax-ipc/parallax"
	"github.com/parallax-ipc/parallax/buffer"
	"github.com/parallax-ipc/parallax/pipeline"
	"github.com/parallax-ipc/parallax/subscriber"
)

// Queue-full policies of [IPCSrc], as its policy property spells them:
// the names [parallax.ParsePolicy] accepts.
const (
	PolicyBlock         = "block"          // parallax.BlockProducer: the publisher waits for space (lossless, up to its block timeout)
	PolicyDiscardOldest = "discard-oldest" // parallax.DiscardOldest: the publisher drops this subscriber's oldest sample
)

// IPCSrc is a [subscriber.Subscriber] on a Parallax topic as a pipeline
// source: it continues a pipeline that another process (or another
// pipeline) feeds with an [IPCSink].
//
// Its buffers are read-only views of the samples in shared memory (no byte
// is copied); releasing a buffer releases the sample. The bytes are mapped
// read-only, so [buffer.Buffer.Writable] reports false for these buffers: an
// element that modifies data gets its own copy with
// [buffer.Buffer.MakeWritable] (or writes its result into a new buffer).
//
// Each buffer carries the metadata its [IPCSink] published (PTS, DTS,
// duration, offset, flags, the producer's Seq), exactly, in the owned memory
// model. Samples without it (a plain publisher, or the shared model, whose
// chunk header has no room for it) get Seq = the publisher's sequence
// number and PTS = DTS = [buffer.NoTime].
//
// At most MaxHeld buffers (per publisher) are out at once: Produce waits
// for one to be released beyond that (owned model; 0: the router's
// [publishers] default_max_held, 16 by default).
//
// The stream ends (io.EOF) after NumBuffers samples (0 or negative:
// never), or when Timeout (0: never) passes without a sample.
//
// Set the fields before the pipeline starts; Topic is required. Received
// may be read from any goroutine. Close closes the subscriber; samples held
// by buffers stay valid until released.
type IPCSrc struct {
	Topic          string
	Domain, Socket string // router selection ("": defaults)
	TypeName       string // topic payload type name ("": untyped bytes)
	Queue          int    // ring capacity per publisher (0: router default)
	Policy         string // as parallax.ParsePolicy reads it; "" means PolicyBlock (not the parallax.Policy zero value)
	History        int    // past samples asked for on connect
	NumBuffers     int64
	Timeout        time.Duration
	BusyPoll       bool          // poll without sleeping (a dedicated core)
	Coalesce       time.Duration // see subscriber.Options.Coalesce
	Spin           time.Duration // see subscriber.Options.Spin (0: 5 µs, negative: none)
	MaxHeld        int           // see subscriber.Options.MaxHeld (owned model; 0: the router's default)

	sub      *subscriber.Subscriber
	n        uint64
	free     chan *srcMem
	received atomic.Uint64
	// released wakes a Produce waiting at the held limit; waiting tells
	// Free that one does (so Free sends nothing otherwise).
	released chan struct{}
	waiting  atomic.Bool
}

var ipcSrcFactory = pipeline.Factory{
	Name: "ipcsrc", Kind: "source",
	Description: "Subscribes to a Parallax topic; buffers are read-only views of the samples (zero copy)",
	Properties: []pipeline.PropSpec{
		{Name: "topic", Type: pipeline.PropString, Description: "topic to subscribe to (required)"},
		{Name: "domain", Type: pipeline.PropString, Description: "router domain (default: $PARALLAX_DOMAIN or \"default\")"},
		{Name: "socket", Type: pipeline.PropString, Description: "router control socket (default: derived from the domain)"},
		{Name: "type", Type: pipeline.PropString, Description: "payload type name of the topic (default: untyped bytes)"},
		{Name: "queue", Type: pipeline.PropInt, Default: "0", Description: "queue capacity per publisher (0: the router's default)", Min: 0, Max: 1 << 24},
		{Name: "policy", Type: pipeline.PropEnum, Default: PolicyBlock, Enum: []string{PolicyBlock, PolicyDiscardOldest, "block-producer", "discard"}, Description: "what a publisher does when the queue is full"},
		{Name: "history", Type: pipeline.PropInt, Default: "0", Description: "past samples to ask publishers for", Min: 0, Max: 1 << 20},
		{Name: "num-buffers", Type: pipeline.PropInt, Default: "-1", Description: "samples before end of stream (-1 or 0: unlimited)"},
		{Name: "timeout", Type: pipeline.PropDuration, Default: "0s", Description: "end the stream after this long without a sample (0: never)", Min: 0, Max: float64(365 * 24 * time.Hour)},
		{Name: "busy-poll", Type: pipeline.PropBool, Default: "false", Description: "poll without sleeping (lowest latency, burns a core)"},
		{Name: "spin", Type: pipeline.PropDuration, Default: "0s", Description: "look at an empty queue this long before sleeping (0: the default, 5us; negative: sleep at once)", Min: float64(-time.Second), Max: float64(time.Second)},
		{Name: "max-held", Type: pipeline.PropInt, Default: "0", Description: "buffers out at once per publisher (owned memory model; 0: the router's default)", Min: 0, Max: 1 << 20},
		{Name: "coalesce", Type: pipeline.PropDuration, Default: "0s", Description: "take a fast stream in batches, waiting this long after catching up (throughput for latency; 0: the subscriber default, a 1 µs pause in takes that wait; negative: no pause)", Min: float64(-time.Second), Max: float64(subscriber.MaxCoalesce)},
	},
	New: func(p *pipeline.Props) (pipeline.Element, error) {
		s := &IPCSrc{Topic: p.String("topic"), Domain: p.String("domain"), Socket: p.String("socket"),
			TypeName: p.String("type"), Queue: int(p.Int("queue")), Policy: p.String("policy"),
			History: int(p.Int("history")), NumBuffers: p.Int("num-buffers"), Timeout: p.Duration("timeout"),
			BusyPoll: p.Bool("busy-poll"), Coalesce: p.Duration("coalesce"), Spin: p.Duration("spin"),
			MaxHeld: int(p.Int("max-held"))}
		if s.Topic == "" {
			return nil, &pipeline.PropertyError{Element: "ipcsrc", Property: "topic", Err: fmt.Errorf("%w: required", pipeline.ErrBadValue), Hint: "for example topic=frames"}
		}
		return s, nil
	},
}

// Start implements [pipeline.Starter]: it subscribes.
func (s *IPCSrc) Start(ctx context.Context) error {
	if s.Topic == "" {
		return errors.New("ipcsrc: no topic set")
	}
	pol := parallax.BlockProducer
	if s.Policy != "" {
		var err error
		if pol, err = parallax.ParsePolicy(s.Policy); err != nil {
			return fmt.Errorf("ipcsrc: %w", err)
		}
	}
	sub, err := subscriber.New(ctx, s.Topic, subscriber.Options{Domain: s.Domain, Socket: s.Socket,
		TypeName: s.TypeName, QueueCapacity: s.Queue, History: s.History, Policy: pol, BusyPoll: s.BusyPoll, Coalesce: s.Coalesce, Spin: s.Spin,
		MaxHeld: s.MaxHeld})
	if err != nil {
		return err
	}
	s.sub = sub
	s.free = make(chan *srcMem, 1024)
	s.released = make(chan struct{}, 1)
	return nil
}

// Subscriber returns the source's subscriber (nil before Start).
func (s *IPCSrc) Subscriber() *subscriber.Subscriber { return s.sub }

// Received returns the number of samples received so far.
func (s *IPCSrc) Received() uint64 { return s.received.Load() }

// Produce implements [pipeline.Source].
func (s *IPCSrc) Produce(ctx context.Context) (*buffer.Buffer, error) {
	if s.NumBuffers > 0 && s.n >= uint64(s.NumBuffers) {
		return nil, io.EOF
	}
	x, err := s.sub.TryTake()
	if errors.Is(err, subscriber.ErrNoData) {
		x, err = s.wait(ctx)
	}
	if errors.Is(err, parallax.ErrLimit) {
		x, err = s.waitHeld(ctx)
	}
	if err != nil {
		return nil, err
	}
	var m *srcMem
	select {
	case m = <-s.free:
	default:
		m = &srcMem{src: s}
	}
	m.sample = x
	m.mem.Init(x.Bytes(), m, nil, 0, x.Ref())
	m.mem.SetReadOnly()
	b := m.mem.NewBuffer(len(x.Bytes()))
	if sm, ok := x.Meta(); ok {
		b.Meta = buffer.Meta{PTS: sm.PTS, DTS: sm.DTS, Duration: sm.Duration, Seq: sm.Seq, Offset: sm.Offset, Flags: buffer.Flags(sm.Flags)}
	} else {
		b.Meta = buffer.Meta{Seq: x.Header().Seq, PTS: buffer.NoTime, DTS: buffer.NoTime}
	}
	s.n++
	s.received.Add(1)
	return b, nil
}

// wait is the slow path: sleep until a sample arrives, the timeout passes
// (end of stream) or the pipeline stops.
func (s *IPCSrc) wait(ctx context.Context) (subscriber.Sample, error) {
	if s.Timeout <= 0 {
		return s.sub.Take(ctx)
	}
	tctx, cancel := context.WithTimeout(ctx, s.Timeout)
	defer cancel()
	x, err := s.sub.Take(tctx)
	if err != nil && ctx.Err() == nil && errors.Is(err, context.DeadlineExceeded) {
		return x, io.EOF
	}
	return x, err
}

// waitHeld is the slow path at the held limit (owned model): every
// publisher's connection holds MaxHeld samples, in buffers downstream.
// It waits until a buffer is released, then takes again.
func (s *IPCSrc) waitHeld(ctx context.Context) (subscriber.Sample, error) {
	s.waiting.Store(true)
	defer s.waiting.Store(false)
	for {
		// Taken after waiting is set: a release from now on wakes us.
		x, err := s.sub.TryTake()
		switch {
		case errors.Is(err, subscriber.ErrNoData):
			return s.wait(ctx)
		case !errors.Is(err, parallax.ErrLimit):
			return x, err
		}
		select {
		case <-s.released:
		case <-ctx.Done():
			return x, context.Cause(ctx)
		}
	}
}

// Close implements io.Closer: it unsubscribes.
func (s *IPCSrc) Close() error {
	if s.sub == nil {
		return nil
	}
	return s.sub.Close()
}

// srcMem is one received sample seen as buffer memory; it is its memory's
// Owner, so releasing the last buffer releases the sample.
type srcMem struct {
	mem    buffer.Memory
	sample subscriber.Sample
	src    *IPCSrc
}

// Free implements [buffer.Owner].
func (m *srcMem) Free(*buffer.Memory) {
	_ = m.sample.Release()
	m.sample = subscriber.Sample{}
	s := m.src
	select {
	case s.free <- m:
	default:
	}
	if s.waiting.Load() { // after the release: see waitHeld
		select {
		case s.released <- struct{}{}:
		default:
		}
	}
}

// ReadOnly reports whether b's bytes are read-only memory, such as a sample
// received by an [IPCSrc]. It is b.Memory().ReadOnly() for a buffer with
// memory; such a buffer is never [buffer.Buffer.Writable].
func ReadOnly(b *buffer.Buffer) bool {
	m := b.Memory()
	return m != nil && m.ReadOnly()
}
