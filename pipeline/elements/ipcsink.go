package elements

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	"github.com/parallax-ipc/parallax"
	"github.com/parallax-ipc/parallax/buffer"
	"github.com/parallax-ipc/parallax/pipeline"
	"github.com/parallax-ipc/parallax/publisher"
)

// IPCSinkEvent is the name of the custom event an [IPCSink] posts when it
// finishes; its value is an [IPCSinkStats].
const IPCSinkEvent = "ipcsink"

// copiedBytes counts, process-wide, the payload bytes every IPCSink had to
// copy into shared memory because a buffer was not one of its own chunks.
var copiedBytes atomic.Uint64

// IPCCopiedBytes returns the payload bytes that IPC sinks of this process
// copied into shared memory so far (buffers that were not allocated from
// their publisher's pool). It is 0 when allocation negotiation made every
// crossing zero-copy. Safe for concurrent use.
func IPCCopiedBytes() uint64 { return copiedBytes.Load() }

// IPCSinkStats counts what an [IPCSink] published.
type IPCSinkStats struct {
	Published   uint64 // samples published
	Bytes       uint64 // payload bytes published
	ZeroCopy    uint64 // samples that were the sink's own chunks (no byte copied)
	Copied      uint64 // samples copied into a chunk first
	CopiedBytes uint64 // payload bytes copied
	Dropped     uint64 // samples a block-producer subscriber missed (block timeout)
}

// String formats the counters as key=value pairs.
func (s IPCSinkStats) String() string {
	return fmt.Sprintf("published=%d bytes=%d zero-copy=%d copied=%d copied-bytes=%d dropped=%d",
		s.Published, s.Bytes, s.ZeroCopy, s.Copied, s.CopiedBytes, s.Dropped)
}

// IPCSink publishes every buffer on a Parallax topic: it is a
// [publisher.Publisher], so a pipeline continues in any process that
// subscribes (for example with an [IPCSrc]).
//
// Allocation negotiation: the sink provides the allocator of its upstream
// ([pipeline.AllocatorProvider]); its buffers are chunks loaned from the
// publisher's memory (in the owned memory model its own data segment,
// in the shared model the router's pools), so upstream elements write
// straight into shared memory and the sink publishes the chunk itself. A buffer that is not one
// of its chunks (a transform replaced it, a tee shares it, Copy is set) is
// copied into a fresh chunk; [IPCSinkStats.CopiedBytes] and
// [IPCCopiedBytes] count those bytes. When no chunk is free (subscribers
// hold every chunk, or MaxLoans buffers are out) allocation waits until
// one is returned, published or freed, or the pipeline stops: in the owned
// model asleep in [publisher.Publisher.LoanWait], in the shared model by
// retrying.
//
// Metadata: each buffer's [buffer.Meta] (PTS, DTS, duration, offset, flags
// and the producer's Seq) travels in the chunk header and an [IPCSrc]
// restores it exactly, in the owned memory model. The shared model's chunk
// header has no room for it: there an IPCSrc sees the publisher's sequence
// number and no timestamps.
//
// In the owned model the publisher's chunk size is MaxPayload (0: the
// router's [publishers] default_max_payload, 4 KiB by default): set it to
// the largest buffer upstream produces.
//
// Set the fields before the pipeline starts; Topic is required. Stats may
// be read from any goroutine. Close (called by the executor) closes the
// publisher once every loaned buffer is back; buffers still held after that
// stay valid.
type IPCSink struct {
	Topic          string
	Domain, Socket string        // router selection ("": defaults)
	TypeName       string        // topic payload type name ("": untyped bytes)
	History        int           // samples kept for late subscribers
	BlockTimeout   time.Duration // wait for space on a block-producer subscriber's queue (0: 1 s)
	// WaitSubscribers makes Start wait until that many subscribers are
	// connected (0: do not wait).
	WaitSubscribers int
	// Copy disables allocation negotiation: upstream allocates elsewhere
	// and every buffer is copied (for comparisons and tests).
	Copy bool
	// MaxPayload is the largest buffer, in bytes (owned model: the chunk
	// size of the publisher's segment; 0: the router's default).
	MaxPayload int
	// MaxLoans bounds the buffers loaned to upstream and not yet
	// published (owned model; 0: DefaultIPCSinkLoans). More allocations
	// wait. The publisher's segment is sized for them.
	MaxLoans int

	pub   *publisher.Publisher
	alloc *ipcAllocator

	published, bytes, zeroCopy, copied, copiedB, dropped atomic.Uint64
}

var ipcSinkFactory = pipeline.Factory{
	Name: "ipcsink", Kind: "sink",
	Description: "Publishes buffers on a Parallax topic; upstream allocates from its shared pool (zero copy)",
	Properties: []pipeline.PropSpec{
		{Name: "topic", Type: pipeline.PropString, Description: "topic to publish on (required)"},
		{Name: "domain", Type: pipeline.PropString, Description: "router domain (default: $PARALLAX_DOMAIN or \"default\")"},
		{Name: "socket", Type: pipeline.PropString, Description: "router control socket (default: derived from the domain)"},
		{Name: "type", Type: pipeline.PropString, Description: "payload type name of the topic (default: untyped bytes)"},
		{Name: "history", Type: pipeline.PropInt, Default: "0", Description: "samples kept for late subscribers", Min: 0, Max: 1 << 20},
		{Name: "block-timeout", Type: pipeline.PropDuration, Default: "1s", Description: "how long to wait for space on a block-producer subscriber's full queue", Min: 0, Max: float64(24 * time.Hour)},
		{Name: "wait-subscribers", Type: pipeline.PropInt, Default: "0", Description: "wait for this many subscribers before starting", Min: 0, Max: 1 << 20},
		{Name: "copy", Type: pipeline.PropBool, Default: "false", Description: "do not provide the allocator: copy every buffer (disables zero copy)"},
		{Name: "max-payload", Type: pipeline.PropBytes, Default: "0", Description: "largest buffer (owned memory model: the chunk size; 0: the router's default)", Min: 0, Max: 1 << 30},
		{Name: "max-loans", Type: pipeline.PropInt, Default: "0", Description: "buffers loaned to upstream at once (owned memory model; 0: 2 x the default link capacity)", Min: 0, Max: 1 << 20},
	},
	New: func(p *pipeline.Props) (pipeline.Element, error) {
		s := &IPCSink{Topic: p.String("topic"), Domain: p.String("domain"), Socket: p.String("socket"),
			TypeName: p.String("type"), History: int(p.Int("history")), BlockTimeout: p.Duration("block-timeout"),
			WaitSubscribers: int(p.Int("wait-subscribers")), Copy: p.Bool("copy"),
			MaxPayload: int(p.Bytes("max-payload")), MaxLoans: int(p.Int("max-loans"))}
		if s.Topic == "" {
			return nil, &pipeline.PropertyError{Element: "ipcsink", Property: "topic", Err: fmt.Errorf("%w: required", pipeline.ErrBadValue), Hint: "for example topic=frames"}
		}
		return s, nil
	},
}

// PadSpec implements [pipeline.PadDeclarer]: one input, no output.
func (s *IPCSink) PadSpec() pipeline.PadSpec { return pipeline.PadSpec{MinIn: 1, MaxIn: 1} }

// Start implements [pipeline.Starter]: it creates the publisher and waits
// for WaitSubscribers subscribers.
func (s *IPCSink) Start(ctx context.Context) error {
	if s.Topic == "" {
		return errors.New("ipcsink: no topic set")
	}
	loans := s.MaxLoans
	if loans <= 0 {
		loans = DefaultIPCSinkLoans
	}
	pub, err := publisher.New(ctx, s.Topic, publisher.Options{Domain: s.Domain, Socket: s.Socket,
		TypeName: s.TypeName, History: s.History, BlockTimeout: s.BlockTimeout,
		MaxPayload: s.MaxPayload, MaxLoans: loans})
	if err != nil {
		return err
	}
	if s.WaitSubscribers > 0 {
		if err := pub.WaitForSubscribers(ctx, s.WaitSubscribers); err != nil {
			_ = pub.Close()
			return err
		}
	}
	s.pub = pub
	s.alloc = &ipcAllocator{pub: pub, maxPayload: s.MaxPayload, free: make(chan *ipcMem, 1024)}
	return nil
}

// DefaultIPCSinkLoans is the [IPCSink.MaxLoans] of a zero value: two links
// of the default capacity, so a source and one transform ahead of the sink
// allocate without waiting for it.
const DefaultIPCSinkLoans = 2 * pipeline.DefaultCapacity

// ProvideAllocator implements [pipeline.AllocatorProvider]: chunks of the
// publisher's shared pool, unless Copy is set.
func (s *IPCSink) ProvideAllocator() buffer.Allocator {
	if s.Copy || s.alloc == nil {
		return nil
	}
	return s.alloc
}

// Publisher returns the sink's publisher (nil before Start).
func (s *IPCSink) Publisher() *publisher.Publisher { return s.pub }

// Stats returns the counters so far.
func (s *IPCSink) Stats() IPCSinkStats {
	return IPCSinkStats{Published: s.published.Load(), Bytes: s.bytes.Load(), ZeroCopy: s.zeroCopy.Load(),
		Copied: s.copied.Load(), CopiedBytes: s.copiedB.Load(), Dropped: s.dropped.Load()}
}

// Run implements [pipeline.Runner]: it publishes every input buffer and
// posts an [IPCSinkEvent] when it finishes.
func (s *IPCSink) Run(ctx context.Context, p *pipeline.Pads) error {
	defer func() { p.Post(IPCSinkEvent, s.Stats()) }()
	for {
		b, ok := p.Recv(0)
		if !ok {
			return nil
		}
		n := b.Len()
		if err := s.publish(ctx, b); err != nil {
			return err
		}
		p.Sent(n)
	}
}

// publish publishes b (zero copy when it is one of the sink's chunks) with
// its metadata, and releases it.
func (s *IPCSink) publish(ctx context.Context, b *buffer.Buffer) error {
	var c publisher.Chunk
	n := b.Len()
	if m := s.alloc.own(b); m != nil {
		c = m.chunk.Truncate(n)
		m.published = true // the chunk now belongs to the subscribers
		s.zeroCopy.Add(1)
	} else {
		var err error
		if c, err = s.alloc.loan(ctx, n); err != nil {
			b.Release()
			return err
		}
		copy(c.Bytes(), b.Bytes())
		s.copied.Add(1)
		s.copiedB.Add(uint64(n))
		copiedBytes.Add(uint64(n))
	}
	c.SetMeta(parallax.SampleMeta{PTS: b.Meta.PTS, DTS: b.Meta.DTS, Duration: b.Meta.Duration,
		Offset: b.Meta.Offset, Seq: b.Meta.Seq, Flags: uint32(b.Meta.Flags)})
	b.Release()
	err := s.pub.Publish(c)
	s.published.Add(1)
	s.bytes.Add(uint64(n))
	if err != nil {
		if errors.Is(err, parallax.ErrTimeout) {
			s.dropped.Add(1) // a slow block-producer subscriber missed it; the others got it
			return nil
		}
		return err
	}
	return nil
}

// Close implements io.Closer: the publisher closes now, or when the last
// buffer loaned from it is released.
func (s *IPCSink) Close() error {
	if s.alloc == nil {
		return nil
	}
	return s.alloc.close()
}

// ipcAllocator loans chunks of a publisher's pool as buffers. Alloc,
// Free and close are safe for concurrent use.
type ipcAllocator struct {
	pub         *publisher.Publisher
	maxPayload  int
	free        chan *ipcMem  // recycled memories (a lock-free-enough free list)
	outstanding atomic.Int64  // buffers loaned and not yet freed
	attempts    atomic.Uint64 // loans tried (tests)
	closing     atomic.Bool
	once        sync.Once
	closeErr    error
}

// ipcMem is one loaned chunk seen as buffer memory; it is its memory's
// Owner, so the sink recognises its own buffers.
type ipcMem struct {
	mem       buffer.Memory
	a         *ipcAllocator
	chunk     publisher.Chunk
	published bool // set by the sink before it publishes the chunk
}

// Alloc implements [buffer.Allocator].
func (a *ipcAllocator) Alloc(ctx context.Context, n int) (*buffer.Buffer, error) {
	a.outstanding.Add(1)
	if a.closing.Load() {
		if a.done() {
			_ = a.finish()
		}
		return nil, fmt.Errorf("allocate from ipcsink %q: %w", a.pub.Topic(), buffer.ErrClosed)
	}
	c, err := a.loan(ctx, n)
	if err != nil {
		if a.done() {
			_ = a.finish()
		}
		return nil, err
	}
	var m *ipcMem
	select {
	case m = <-a.free:
	default:
		m = &ipcMem{a: a}
	}
	m.chunk = c
	m.mem.Init(c.Bytes(), m, nil, 0, c.Ref())
	return m.mem.NewBuffer(n), nil
}

// loan loans a chunk of n bytes, waiting while none is free or MaxLoans
// buffers are out. In the owned model it waits in Publisher.LoanWait with
// the pipeline's context: asleep on the subscribers' return queues, or
// until the sink publishes or upstream frees a buffer, never polling.
func (a *ipcAllocator) loan(ctx context.Context, n int) (publisher.Chunk, error) {
	for {
		a.attempts.Add(1)
		c, err := a.pub.LoanWait(ctx, n)
		switch {
		case err == nil:
			return c, nil
		case ctx.Err() != nil:
			return c, fmt.Errorf("loan %d bytes on %q: %w (%w)", n, a.pub.Topic(), err, context.Cause(ctx))
		case errors.Is(err, context.DeadlineExceeded):
			// The router did not answer a growth request in time (its
			// own timeout, not the pipeline's): ask again.
			continue
		}
		return c, fmt.Errorf("loan %d bytes on %q (ipcsink max-payload %d, 0: the router's default): %w", n, a.pub.Topic(), a.maxPayload, err)
	}
}

// own returns b's ipcMem when b is this allocator's chunk, viewed from its
// start by its only holder, so the chunk itself can be published.
func (a *ipcAllocator) own(b *buffer.Buffer) *ipcMem {
	mem := b.Memory()
	if mem == nil {
		return nil
	}
	m, ok := mem.Owner().(*ipcMem)
	if !ok || m.a != a || b.Offset() != 0 || mem.Refs() != 1 {
		return nil
	}
	return m
}

// Free implements [buffer.Owner]: an unpublished chunk goes back to the
// pool; a published one already belongs to the subscribers.
func (m *ipcMem) Free(*buffer.Memory) {
	a := m.a
	if !m.published {
		_ = a.pub.Release(m.chunk)
	}
	m.chunk, m.published = publisher.Chunk{}, false
	select {
	case a.free <- m:
	default:
	}
	if a.done() {
		go func() { _ = a.finish() }() // Free must not block: close the publisher aside
	}
}

// done counts one buffer back and reports whether the allocator should
// now close its publisher.
func (a *ipcAllocator) done() bool {
	return a.outstanding.Add(-1) == 0 && a.closing.Load()
}

func (a *ipcAllocator) close() error {
	a.closing.Store(true)
	if a.outstanding.Load() == 0 {
		return a.finish()
	}
	return nil
}

func (a *ipcAllocator) finish() error {
	a.once.Do(func() { a.closeErr = a.pub.Close() })
	return a.closeErr
}
