package publisher

import (
	"context"
	"fmt"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"github.com/parallax-ipc/parallax"
	"github.com/parallax-ipc/parallax/dataseg"
	"github.com/parallax-ipc/parallax/internal/clientrt"
	"github.com/parallax-ipc/parallax/internal/ownedpub"
	"github.com/parallax-ipc/parallax/internal/rpclink"
	"github.com/parallax-ipc/parallax/internal/wire"
)

// Options configure a [Publisher]. The zero value is a valid default: the
// router of $PARALLAX_DOMAIN (or "default"), an untyped byte payload, no
// history.
type Options struct {
	// Domain and Socket select the router ("" = defaults).
	Domain, Socket string
	// TypeName, TypeSize and TypeAlign describe the payload type; a
	// subscriber that asks for a different type is refused with
	// parallax.ErrIncompatibleType. TypeSize 0 means variable-size bytes.
	TypeName  string
	TypeSize  uint32
	TypeAlign uint32
	// History keeps the last History samples for subscribers that join
	// later and ask for history.
	History int
	// BlockTimeout bounds how long Publish waits for space on a
	// block-producer subscriber's full queue; 0 means 1 s. When it passes,
	// that subscriber misses the sample and Publish returns an error
	// wrapping parallax.ErrTimeout (the others got it).
	BlockTimeout time.Duration
	// Spin is how long Publish keeps retrying a full block-producer queue
	// (yielding now and then, so a consumer on the same core can run)
	// before it sleeps on the queue's futex, measured on the monotonic
	// clock so it means the same on every machine. 0 means [DefaultSpin];
	// a negative value disables spinning: Publish sleeps at once. A
	// consumer that is awake frees a slot within microseconds, and each
	// sleep costs the consumer a wake system call per slot it frees.
	Spin time.Duration
	// MaxPayload, MaxLoans and ExpectedSubscribers size the publisher's own
	// data segment: the chunk size of an untyped publisher (a larger Loan
	// gets a dedicated segment, see RetireAfter), the chunks loaned and not
	// yet published or released at once (a Loan beyond fails with an error
	// wrapping parallax.ErrLimit), and the subscribers the first segment
	// makes room for. 0 means the router's [publishers] defaults (4 KiB, 4,
	// 1); MaxLoans 0 also means the publisher itself caps no loans. A Loan
	// that finds no free chunk (within MaxLoans), or one larger than
	// MaxPayload, gets more memory from the router (see the package doc,
	// "Memory"). An untyped publisher with MaxPayload 0 whose loans are
	// far smaller than the default class also gets a class of small
	// chunks, after its first such loans (asked for in the background).
	MaxPayload          int
	MaxLoans            int
	ExpectedSubscribers int
	// RetireAfter is how long a dedicated segment (made for loans larger
	// than MaxPayload) stays completely free before the publisher gives
	// it back to the router. 0 means
	// [DefaultRetireAfter]; a negative value keeps dedicated segments
	// until Close.
	RetireAfter time.Duration
}

// DefaultSpin is the spin budget of a zero [Options.Spin].
const DefaultSpin = 20 * time.Microsecond

// A Publisher publishes samples on one topic. Use [New]; the zero value is
// invalid. A Publisher is safe for concurrent use: Loan, LoanWait,
// Publish, PublishBatch, Release and Send may be called from several
// goroutines (the publisher serialises them: each takes its lock once, so
// a single publishing goroutine pays nothing for the others), and Close
// from any goroutine; Close is idempotent.
type Publisher struct {
	rt    *clientrt.Runtime
	id    uint32
	topic string
	owner uint16
	opts  Options

	changed clientrt.Signal
	// corruptConns counts connections that failed (owned.go badConn).
	corruptConns atomic.Uint64
	closeOnce    sync.Once
	// closed is set by Close (for the control path: a router resume);
	// the engine refuses loans and publishes on its own (ownedpub.Close).
	closed atomic.Bool
	// own is the publisher's engine and connections (owned.go), set once
	// in New, before the endpoint sees its first connection. The
	// engine counts the loans: its OnIdle, after Close and the last
	// loan, unmaps the data segments and releases this publisher's share
	// of the process runtime (idle).
	own atomic.Pointer[owned]
	// link is package rpc's (internal/rpclink), nil for a pub/sub
	// publisher.
	link *rpclink.Pub
}

// idle is the engine's OnIdle: Close has run and no loan or hold remains,
// so no chunk of the data segments is in use by this process any more.
func (p *Publisher) idle() {
	p.rt.CloseOwnedPublisher(p.id)
	p.rt.Release()
}

// New creates a publisher on topic.
func New(ctx context.Context, topic string, opts Options) (_ *Publisher, err error) {
	if err := wire.ValidateTopic(topic); err != nil {
		return nil, fmt.Errorf("publisher: %w", err) // wraps parallax.ErrInvalidArgument
	}
	if opts.History < 0 {
		return nil, fmt.Errorf("publisher %q: negative history %d: %w", topic, opts.History, parallax.ErrInvalidArgument)
	}
	if opts.MaxPayload < 0 || opts.MaxPayload > wire.MaxPayloadSize || opts.MaxLoans < 0 || opts.MaxLoans > wire.MaxLoansLimit ||
		opts.ExpectedSubscribers < 0 || opts.ExpectedSubscribers > wire.MaxExpectedSubs {
		return nil, fmt.Errorf("publisher %q: max payload %d (limit %d), max loans %d (limit %d) or expected subscribers %d (limit %d) out of range: %w",
			topic, opts.MaxPayload, wire.MaxPayloadSize, opts.MaxLoans, wire.MaxLoansLimit, opts.ExpectedSubscribers, wire.MaxExpectedSubs, parallax.ErrInvalidArgument)
	}
	if opts.BlockTimeout <= 0 {
		opts.BlockTimeout = time.Second
	}
	if opts.Spin == 0 {
		opts.Spin = DefaultSpin
	}
	link := rpclink.PubFrom(ctx) // package rpc's endpoints only
	if link != nil && opts.History != 0 {
		return nil, fmt.Errorf("publisher %q: history on a request/response endpoint: %w", topic, parallax.ErrInvalidArgument)
	}
	var kind uint8
	if link != nil {
		kind = link.Kind
	}
	rt, pc, files, err := clientrt.AcquireCreate[*wire.PublisherCreated](ctx, clientrt.Options{Domain: opts.Domain, Socket: opts.Socket},
		&wire.CreatePublisher{Topic: topic, History: uint32(opts.History),
			Type:       wire.TypeInfo{Name: opts.TypeName, Size: opts.TypeSize, Align: opts.TypeAlign},
			MaxPayload: uint32(opts.MaxPayload), MaxLoans: uint32(opts.MaxLoans), ExpectedSubscribers: uint16(opts.ExpectedSubscribers), Kind: kind})
	if err != nil {
		return nil, fmt.Errorf("create publisher on %q: %w", topic, err)
	}
	defer rt.EndCreate()
	p := &Publisher{rt: rt, topic: topic, owner: rt.ClientID(), opts: opts, link: link}
	p.id = pc.PubID
	for _, f := range files { // the reply carries none; the data segments come as pushes
		_ = f.Close()
	}
	// The data segments came before the reply; wait until the push
	// goroutine mapped them, before any connection reaches us.
	err = rt.Wired(ctx)
	if err == nil {
		err = p.initOwned() // owned.go
	}
	if err != nil {
		_ = p.closeRemote()
		rt.CloseOwnedPublisher(p.id)
		rt.Release()
		return nil, fmt.Errorf("create publisher on %q: %w", topic, err)
	}
	rt.RegisterPublisher(p.id, endpoint{p})
	if err := rt.Wired(ctx); err != nil {
		_ = p.Close()
		return nil, fmt.Errorf("wire %q: %w", topic, err)
	}
	p.waitOwnedWired(ctx, p.own.Load()) // owned.go
	return p, nil
}

// ID returns the router-assigned publisher id (the origin in sample headers).
func (p *Publisher) ID() uint32 { return p.id }

// Topic returns the topic name.
func (p *Publisher) Topic() string { return p.topic }

// Subscribers returns the number of subscribers currently connected. A
// subscriber that closed, or whose process dropped its router connection,
// no longer counts, even while the samples it still holds are being
// returned: nothing is delivered to it any more.
func (p *Publisher) Subscribers() int { return int(p.own.Load().live.Load()) }

// WaitForSubscribers waits until at least n subscribers are connected, or
// ctx ends.
func (p *Publisher) WaitForSubscribers(ctx context.Context, n int) error {
	if err := p.changed.Wait(ctx, func() bool { return p.Subscribers() >= n }); err != nil {
		return fmt.Errorf("publisher %q: wait for %d subscribers (have %d): %w", p.topic, n, p.Subscribers(), err)
	}
	return nil
}

// Published returns the number of samples published.
func (p *Publisher) Published() uint64 { return p.own.Load().eng.Published() }

// Dropped returns the samples that subscribers missed because of this
// publisher's discards (discard-oldest) or block timeouts.
func (p *Publisher) Dropped() uint64 { return p.Stats().Dropped }

// A Chunk is a loaned piece of shared memory. Its bytes alias the
// publisher's data segment and are only valid until it is published or
// released. A Chunk is a small value; copying it does not copy the loan
// (publish or release it once).
type Chunk struct {
	ol ownedpub.Loan // the engine's loan: chunk, bytes, header fields
}

// Bytes returns the chunk's payload bytes (in shared memory).
func (c Chunk) Bytes() []byte { return c.ol.Bytes() }

// Len returns the payload length that Publish will announce.
func (c Chunk) Len() int { return len(c.ol.Bytes()) }

// Ref returns the chunk reference.
func (c Chunk) Ref() parallax.ChunkRef { return c.ol.Ref() }

// SetMeta sets the media metadata Publish carries in the chunk header, for
// subscribers to read back exactly with subscriber.Sample.Meta (PTS, DTS,
// duration, offset, the producer's own sequence number and flags; bit 31 of
// the flags, [parallax.MetaFlagsReserved], is not carried). It costs
// nothing when not called.
func (c *Chunk) SetMeta(m parallax.SampleMeta) {
	c.ol.SetMeta(dataseg.Meta{Flags: m.Flags&^dataseg.FlagMetaSet | dataseg.FlagMetaSet,
		PTS: int64(m.PTS), DTS: int64(m.DTS), Duration: int64(m.Duration), Offset: m.Offset, UserSeq: m.Seq})
}

// Truncate returns c announcing only the first n bytes.
func (c Chunk) Truncate(n int) Chunk {
	c.ol.Truncate(n)
	return c
}

// Loan returns a chunk of at least n bytes (exactly the type's size on a
// typed publisher) from the publisher's own data segments, most recently
// returned first. With [Options.MaxLoans] chunks loaned it fails at once
// with an error wrapping parallax.ErrLimit. When no chunk is free it asks
// the router for a growth segment, and for n above [Options.MaxPayload] for
// a dedicated one; a router limit that refuses it gives an error wrapping
// parallax.ErrLimit naming the limit. [Publisher.LoanWait] waits for a
// subscriber's return instead.
func (p *Publisher) Loan(n int) (c Chunk, err error) {
	if p.opts.TypeSize != 0 && n != int(p.opts.TypeSize) {
		return Chunk{}, fmt.Errorf("loan %d bytes on %q of type %q (%d bytes): %w", n, p.topic, p.opts.TypeName, p.opts.TypeSize, parallax.ErrIncompatibleType)
	}
	err = p.loanOwned(&c, p.own.Load(), n) // owned.go
	return c, err
}

// Release gives back a loaned chunk without publishing it, after Close too.
// A chunk that is not a current loan (published or released already) is
// an error wrapping parallax.ErrNotHeld, or os.ErrClosed after Close.
func (p *Publisher) Release(c Chunk) error {
	return p.releaseOwned(p.own.Load(), c) // owned.go
}

// Publish delivers c to every connected subscriber and to the history, and
// gives up the loan. It never copies payload bytes. After Close it gives
// the chunk back and returns an error wrapping os.ErrClosed.
func (p *Publisher) Publish(c Chunk) error {
	return p.publishOwned(p.own.Load(), &c) // owned.go
}

// Send copies b into a loaned chunk and publishes it.
func (p *Publisher) Send(b []byte) error {
	c, err := p.Loan(len(b))
	if err != nil {
		return err
	}
	copy(c.Bytes(), b)
	return p.Publish(c)
}

// connectionAdded handles clientrt.Endpoint.ConnectionAdded: the
// connection is used once its segment arrives (owned.go).
func (p *Publisher) connectionAdded(m *wire.ConnectionAdded) {
	p.ownedConnAdded(p.own.Load(), m) // owned.go
}

// connectionRemoved handles clientrt.Endpoint.ConnectionRemoved.
func (p *Publisher) connectionRemoved(m *wire.ConnectionRemoved) {
	p.ownedConnRemoved(p.own.Load(), m) // owned.go
}

// Close releases the history, reports the publisher's final counters
// (what `parallax topics` and the router's introspection count; waiting at
// most about a second for the router, not at all when it is gone), tells
// the router the publisher is gone and drops this publisher's share of
// the process runtime. Samples already delivered stay readable by
// subscribers until they release them.
func (p *Publisher) Close() error {
	var err error
	p.closeOnce.Do(func() {
		o := p.own.Load()
		o.eng.Hold() // Close's own; cannot fail before Close
		o.eng.Close()
		p.closed.Store(true)
		// Only now stop taking pushes: from there on the runtime releases
		// removed connections without asking us. No publish starts any
		// more; one already waiting on a full block-producer queue gives
		// up when closeOwned removes that connection (RemoveConn waits
		// for it), so no publish touches a ring after closeOwned.
		p.rt.Unregister(true, p.id)
		p.closeOwned(o) // owned.go
		// The last counters, before the router forgets the publisher
		// (best effort, bounded: Close succeeds without a router).
		if rerr := p.rt.ReportFinal(endpoint{p}); rerr != nil && !clientrt.IsClosed(rerr) {
			slog.Debug("parallax: publisher closes without its final report", "topic", p.topic, "err", rerr)
		}
		err = p.closeRemote()
		o.eng.Unhold() // idle now unless a loan is outstanding
	})
	return err
}

func (p *Publisher) closeRemote() error {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	call, err := p.rt.StartClose(true, p.id, &wire.ClosePublisher{PubID: p.id})
	if err == nil && call != nil { // nil: a router resume closed it already
		_, _, err = call.Wait(ctx)
	}
	if err != nil && clientrt.IsClosed(err) {
		return nil // router gone: nothing left to tell
	}
	return err
}
