package gateway

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/parallax-ipc/parallax"
	"github.com/parallax-ipc/parallax/publisher"
)

// An importer receives one NATS subject and publishes its messages on the
// local topic. handle runs on the subscription's goroutine (one at a time);
// start and stop run on the gateway's session goroutine; mu orders them.
type importer struct {
	g       *Gateway
	topic   Topic
	subject string
	natsSub atomic.Pointer[nats.Subscription] // core NATS only
	ownID   atomic.Uint32                     // id of pub, 0 when none (router ids start at 1)
	c       counters

	mu       sync.Mutex
	ctx      context.Context // the session's, nil between sessions
	pub      *publisher.Publisher
	typ      Type      // pub's type
	retryAt  time.Time // no publisher creation before then
	attempt  int       // failed creations in a row
	lastErr  error     // why the last creation failed
	lastType Type      // the type it was attempted with
	seq      seqTracker
	parts    reassembly // reassemble.go
	limiter  limiter
	staged   []publisher.Chunk // a batch's loaned chunks, filled, not yet published (importbatch.go)
}

func newImporter(g *Gateway, t Topic) *importer {
	return &importer{g: g, topic: t, subject: g.opts.Prefix + t.Name}
}

// blockTimeout is how long, under PolicyBlock, an importer's publish waits
// for a block-producer subscriber's queue before that subscriber misses
// the message (counted as dropped). While it waits, nats.go holds the
// following messages (up to the pending limits).
const blockTimeout = 5 * time.Second

// isOwn reports whether local publisher id is this importer's publisher.
func (i *importer) isOwn(id uint32) bool { return id != 0 && i.ownID.Load() == id }

// stats returns the topic's counters, with nats.go's slow-consumer drops.
func (i *importer) stats() TopicStats {
	s := i.c.load(i.topic.Name, false)
	if sub := i.natsSub.Load(); sub != nil {
		if n, err := sub.Dropped(); err == nil {
			s.Dropped += uint64(n)
		}
	}
	return s
}

// start begins a session: with a configured type the publisher is created
// at once, so that local subscribers connect before the first message.
func (i *importer) start(ctx context.Context) {
	i.mu.Lock()
	defer i.mu.Unlock()
	i.ctx, i.retryAt, i.attempt = ctx, time.Time{}, 0
	if i.topic.Type != nil {
		if err := i.create(*i.topic.Type); err != nil {
			i.g.log.Error("cannot import topic yet", "topic", i.topic.Name, "err", err)
		}
	}
}

// stop ends a session, closing the local publisher.
func (i *importer) stop() {
	i.mu.Lock()
	defer i.mu.Unlock()
	i.ctx = nil
	i.closePub()
}

func (i *importer) closePub() {
	if i.pub == nil {
		return
	}
	i.c.dropped.Add(i.parts.clear(i.pub))
	i.ownID.Store(0)
	if err := i.pub.Close(); err != nil {
		i.g.log.Debug("close import publisher", "topic", i.topic.Name, "err", err)
	}
	i.pub = nil
}

// create makes the local publisher with type t. It fails at once (with the
// previous error) until the backoff delay after a failure has passed.
func (i *importer) create(t Type) error {
	if i.ctx == nil {
		return fmt.Errorf("import %q: no router connection: %w", i.topic.Name, parallax.ErrDaemonUnavailable)
	}
	if time.Now().Before(i.retryAt) && t == i.lastType {
		return i.lastErr
	}
	opts := publisher.Options{
		Domain: i.g.opts.Domain, Socket: i.g.opts.Socket,
		TypeName: t.Name, TypeSize: t.Size, TypeAlign: t.Align,
		MaxPayload: i.g.opts.MaxPayload,
	}
	if i.g.opts.Policy == PolicyBlock {
		opts.BlockTimeout = blockTimeout
	}
	pub, err := publisher.New(i.ctx, i.topic.Name, opts)
	if err != nil {
		i.lastErr = fmt.Errorf("import %q: publish locally as %v: %w", i.topic.Name, t, err)
		i.lastType = t
		i.retryAt = time.Now().Add(i.g.backoff(i.attempt))
		i.attempt++
		return i.lastErr
	}
	i.pub, i.typ, i.attempt, i.lastErr = pub, t, 0, nil
	i.ownID.Store(pub.ID())
	// The router pushes the connections to existing subscribers right after
	// its reply; give them a moment so the first message is not lost.
	if pub.Subscribers() == 0 {
		wctx, cancel := context.WithTimeout(i.ctx, i.g.opts.SubscriberWait)
		_ = pub.WaitForSubscribers(wctx, 1)
		cancel()
	}
	return nil
}

// onMsg is the core NATS subscription's handler.
func (i *importer) onMsg(m *nats.Msg) { i.handle(m.Data) }

// handle publishes one NATS message locally: a whole message, each
// message of a batch, or, for a part of a split message, adds it to the
// message being reassembled. Decoding allocates nothing; each payload is
// copied once, from the NATS message into a loaned chunk. A batch takes
// mu once and adds its counters once.
func (i *importer) handle(data []byte) {
	var f frame
	if err := parseFrame(data, &f); err != nil {
		i.refuse(fmt.Errorf("import %q: message on %q: %w", i.topic.Name, i.subject, err), 1)
		return
	}
	n := uint64(1)
	if f.batch {
		n = uint64(f.count)
	}
	if string(f.gateway) == i.g.id {
		i.c.looped.Add(n)
		return
	}
	if want := i.topic.Type; want != nil && !f.isType(*want) {
		i.refuse(fmt.Errorf("import %q: message of type %v from gateway %s, topic configured as %v: %w",
			i.topic.Name, f.meta().Type, f.gateway, *want, parallax.ErrIncompatibleType), n)
		return
	}
	i.mu.Lock()
	defer i.mu.Unlock()
	i.track(&f)
	if i.pub == nil {
		if err := i.create(f.meta().Type); err != nil {
			if errors.Is(err, parallax.ErrIncompatibleType) {
				i.refuse(err, n)
			} else {
				i.drop(err, n)
			}
			return
		}
	}
	if !f.isType(i.typ) {
		i.refuse(fmt.Errorf("import %q: message of type %v from gateway %s, local publisher has %v: %w",
			i.topic.Name, f.meta().Type, f.gateway, i.typ, parallax.ErrIncompatibleType), n)
		return
	}
	switch {
	case f.batch:
		for rest := f.payload; len(rest) > 0; {
			var payload []byte
			_, _, _, payload, rest = nextRecord(rest)
			i.stage(payload) // importbatch.go
		}
		i.flush()
	case f.split:
		i.addPart(&f)
	default:
		if i.put(f.payload) {
			i.c.forwarded.Add(1)
		}
	}
}

// track counts the origin sequence gaps of f's messages (a split message
// once, at its first part), whatever happens to them next. The caller
// holds mu.
func (i *importer) track(f *frame) {
	switch {
	case f.batch:
		for rest := f.payload; len(rest) > 0; {
			var seq uint64
			var pub uint32
			seq, _, pub, _, rest = nextRecord(rest)
			i.seq.track(f.gateway, pub, seq)
		}
	case f.part == 0:
		i.seq.track(f.gateway, f.publisher, f.seq)
	}
	i.seq.flush(&i.c)
}

// put publishes payload locally in a loaned chunk and reports whether it
// went out (a failure is logged and counted as dropped). The caller holds
// mu and has a publisher.
func (i *importer) put(payload []byte) bool {
	c, err := i.loan(len(payload))
	if err != nil {
		i.drop(err, 1)
		return false
	}
	copy(c.Bytes(), payload)
	return i.publish(c)
}

// isType reports whether f carries type t.
func (f *frame) isType(t Type) bool {
	return f.typeSize == t.Size && f.typeAlign == t.Align && string(f.typeName) == t.Name
}

// loan loans a chunk of n bytes. Under PolicyBlock it waits (with backoff,
// until the session ends) while the pool is exhausted.
func (i *importer) loan(n int) (publisher.Chunk, error) {
	for attempt := 0; ; attempt++ {
		c, err := i.pub.Loan(n)
		if err == nil {
			return c, nil
		}
		if i.g.opts.Policy != PolicyBlock || !errors.Is(err, parallax.ErrPoolExhausted) || !sleep(i.ctx, poolBackoff(attempt)) {
			return c, fmt.Errorf("import %q: loan %d bytes locally: %w", i.topic.Name, n, err)
		}
	}
}

// poolBackoff is the wait after attempt failed loans: 20 us doubling to
// 5 ms.
func poolBackoff(attempt int) time.Duration {
	return min(20*time.Microsecond<<min(attempt, 8), 5*time.Millisecond)
}

// publish publishes a filled chunk locally and reports whether it went
// out; the caller counts it as forwarded.
func (i *importer) publish(c publisher.Chunk) bool {
	if err := i.pub.Publish(c); err != nil {
		// A block-producer subscriber's timeout: it missed the message,
		// the others have it.
		i.drop(fmt.Errorf("import %q: publish %d bytes locally: %w", i.topic.Name, c.Len(), err), 1)
		return false
	}
	return true
}

// refuse and drop log before they count (n messages), so that whoever
// sees the count finds the log line.
func (i *importer) refuse(err error, n uint64) {
	i.logLimited("refused message", err)
	i.c.refused.Add(n)
}

func (i *importer) drop(err error, n uint64) {
	i.logLimited("message not imported", err)
	i.c.dropped.Add(n)
}

// logLimited may run before mu is taken (refusals); the limiter is only
// touched from the subscription goroutine, so it needs no lock.
func (i *importer) logLimited(msg string, err error) {
	i.limiter.log(i.g, msg, "topic", i.topic.Name, "err", err)
}
