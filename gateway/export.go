package gateway

import (
	"context"
	"errors"
	"fmt"
	"sync/atomic"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/parallax-ipc/parallax/subscriber"
)

// maxBatch bounds the samples an exporter takes (and stages) in one go
// before it publishes them and adds its counters.
const maxBatch = 256

// maxBatchBytes ends a batch early, so that the counters of large samples
// are not held back and the staging buffer stays small enough for the
// caches (nats.go copies out of it right after it was written).
const maxBatchBytes = 256 << 10

// maxBatchFrame bounds the size of a batch (one NATS message). A receiving
// nats.go copies every message into a fresh allocation; up to 32 KiB that
// comes from the Go allocator's size classes, which reuse cache-warm
// memory, while a larger one is a large object, fresh (often page-faulted)
// memory every time (cleared, and returned to the OS by the runtime's
// scavenger and faulted in again). 32 KiB also matches nats.go's read and
// write buffers, and still carries some 30 samples of 1 KiB per NATS
// message. (Against batches of up to 256 KiB the difference was within
// the noise of a shared machine; the importer's profile at 64 KiB per
// message shows what large objects cost.)
const maxBatchFrame = 32 << 10

// maxStagedSample is the largest sample that is staged; a larger one is
// published straight from its own buffer (no gain from batching a sample
// that costs far more than a wake-up, and no cold staging buffer).
const maxStagedSample = 16 << 10

// An exporter subscribes to one local topic and publishes its samples to
// NATS. Its goroutine is the only user of sub's Take, of buf and of the
// batch counts.
type exporter struct {
	g       *Gateway
	topic   Topic
	typ     Type
	subject string
	imp     *importer // the same topic's importer, or nil (loop prevention)
	c       counters

	sub       atomic.Pointer[subscriber.Subscriber] // current local subscriber, nil when none
	whole     []byte                                // header of an unsplit message (origin fields zero)
	split     []byte                                // header of a part
	batch     []byte                                // header of a batch (count zero), as long as whole
	buf       []byte                                // the message being published (forward)
	staged    []byte                                // a batch header and the staged records (stage)
	nStaged   int                                   // records in staged
	seq       seqTracker                            // origin gaps of local publishers (PolicyBlock)
	nExported uint64                                // counts of the current batch
	nLooped   uint64
	limiter   limiter
}

func newExporter(g *Gateway, t Topic) *exporter {
	e := &exporter{g: g, topic: t, subject: g.opts.Prefix + t.Name, imp: g.imports[t.Name]}
	if t.Type != nil {
		e.typ = *t.Type
	}
	e.whole = appendPrefix(nil, g.id, e.typ, false)
	e.split = appendPrefix(nil, g.id, e.typ, true)
	e.batch = appendPrefix(nil, g.id, e.typ, false)
	e.batch[3] = flagBatch
	return e
}

// open tries once to create the local subscriber.
func (e *exporter) open(ctx context.Context) error {
	if e.sub.Load() != nil {
		return nil
	}
	policy := subscriber.DiscardOldest
	if e.g.opts.Policy == PolicyBlock {
		policy = subscriber.BlockProducer
	}
	sub, err := subscriber.New(ctx, e.topic.Name, subscriber.Options{
		Domain: e.g.opts.Domain, Socket: e.g.opts.Socket,
		TypeName: e.typ.Name, TypeSize: e.typ.Size, TypeAlign: e.typ.Align,
		QueueCapacity: e.g.opts.QueueCapacity, Policy: policy,
		// The exporter drains its queue at each take: a blocked local
		// publisher is woken once per half queue, not once per sample.
		DrainWakes: e.g.opts.Policy == PolicyBlock,
	})
	if err != nil {
		return fmt.Errorf("export %q: subscribe locally as %v: %w", e.topic.Name, e.typ, err)
	}
	e.sub.Store(sub)
	return nil
}

// close closes the local subscriber, keeping its drop count.
func (e *exporter) close() {
	sub := e.sub.Swap(nil)
	if sub == nil {
		return
	}
	e.c.dropped.Add(sub.Dropped())
	if err := sub.Close(); err != nil {
		e.g.log.Debug("close export subscriber", "topic", e.topic.Name, "err", err)
	}
}

// stats returns the topic's counters, with the current subscriber's
// discards.
func (e *exporter) stats() TopicStats {
	s := e.c.load(e.topic.Name, true)
	if sub := e.sub.Load(); sub != nil {
		s.Dropped += sub.Dropped()
	}
	return s
}

// run forwards samples until ctx ends, re-creating the subscriber with
// backoff when it fails.
func (e *exporter) run(ctx context.Context) {
	defer e.close()
	for attempt := 0; ctx.Err() == nil; {
		if err := e.open(ctx); err != nil {
			if ctx.Err() != nil {
				return
			}
			d := e.g.backoff(attempt)
			attempt++
			e.g.log.Error("cannot export topic; retrying", "topic", e.topic.Name, "in", d, "err", err)
			sleep(ctx, d)
			continue
		}
		attempt = 0
		// pump returns only with an error (ctx's when it ends).
		if err := e.pump(ctx, e.sub.Load()); ctx.Err() == nil {
			e.g.log.Warn("export subscriber failed; re-creating", "topic", e.topic.Name, "err", err)
			e.close()
		}
	}
}

// pump forwards batches: one blocking Take, then what is queued (up to
// maxBatch samples or maxBatchBytes) without blocking, each sample staged
// (copied behind its header into one buffer) and released at once; then
// the staged messages are published and the batch's counters added.
// Taking the whole batch before publishing it empties the queue at once: a
// block-producer publisher waiting on the full queue is woken once per
// batch and refills the queue while the batch goes out, instead of waiting
// (spinning or sleeping) for every slot that one publish frees. Staging
// copies no more than publishing from the sample did, and holds no chunk
// beyond the one being staged. nats.go buffers the publishes and its
// flusher writes them out; nothing here flushes.
func (e *exporter) pump(ctx context.Context, sub *subscriber.Subscriber) error {
	for {
		s, err := sub.Take(ctx)
		if err != nil {
			return err
		}
		for n, size := 1, 0; ; n++ {
			size += len(s.Bytes())
			e.stage(ctx, s)
			if rerr := s.Release(); rerr != nil {
				e.g.log.Warn("release exported sample", "topic", e.topic.Name, "err", rerr)
			}
			if n == maxBatch || size >= maxBatchBytes {
				break
			}
			if s, err = sub.TryTake(); err != nil {
				break
			}
		}
		e.publishStaged(ctx)
		e.flushCounts()
		if err != nil && !errors.Is(err, subscriber.ErrNoData) {
			return err
		}
	}
}

func (e *exporter) flushCounts() {
	if e.nExported > 0 {
		e.c.forwarded.Add(e.nExported)
		e.nExported = 0
	}
	if e.nLooped > 0 {
		e.c.looped.Add(e.nLooped)
		e.nLooped = 0
	}
	e.seq.flush(&e.c)
}

// stage appends sample s's message to the staged batch (a record:
// origin, length, payload). A sample that must be split, or is larger
// than maxStagedSample, is published at once instead, after the messages
// staged before it. The bytes are copied, so s may be released afterwards.
func (e *exporter) stage(ctx context.Context, s subscriber.Sample) {
	h := s.Header()
	if e.imp != nil && e.imp.isOwn(h.PublisherID) {
		e.nLooped++
		return
	}
	if e.g.opts.Policy == PolicyBlock {
		e.seq.track(nil, h.PublisherID, h.Seq)
	}
	data := s.Bytes()
	limit := e.g.maxPayload.Load()
	if len(data) > maxStagedSample || int64(len(e.whole)+len(data)) > limit {
		e.publishStaged(ctx)
		e.forward(ctx, h, data)
		return
	}
	if e.nStaged > 0 && int64(len(e.staged)+recordLen+len(data)) > min(limit, maxBatchFrame) {
		e.publishStaged(ctx)
	}
	if e.nStaged == 0 {
		e.staged = append(e.staged[:0], e.batch...)
	}
	e.staged = appendRecord(e.staged, h.Seq, h.Timestamp, h.PublisherID, data)
	e.nStaged++
	if e.g.opts.Unbatched {
		e.publishStaged(ctx)
	}
}

// publishStaged publishes the staged records, as one batch when there are
// several and as a whole message when there is one, and empties the stage.
// A single record becomes a whole message in place: the whole header is as
// long as the batch header, so it fits in front of the payload where the
// batch header and the record header were.
func (e *exporter) publishStaged(ctx context.Context) {
	switch n := e.nStaged; n {
	case 0:
		return
	case 1:
		seq, ts, pub, _, _ := nextRecord(e.staged[len(e.batch):])
		b := e.staged[recordLen:]
		copy(b, e.whole)
		setOrigin(b, seq, ts, pub)
		if e.send(ctx, b, 1) {
			e.nExported++
		}
	default:
		setCount(e.staged, n)
		if e.send(ctx, e.staged, uint64(n)) {
			e.nExported += uint64(n)
		}
	}
	e.staged, e.nStaged = e.staged[:0], 0
}

// forward publishes one sample's payload data with header h to NATS, split
// into parts when it is larger than the server's max payload. The bytes
// are copied (behind the header) into buf, and nats.go copies buf into its
// own buffer before Publish returns, so the sample may be released
// afterwards.
func (e *exporter) forward(ctx context.Context, h subscriber.Header, data []byte) {
	limit := e.g.maxPayload.Load()
	if int64(len(e.whole)+len(data)) <= limit {
		e.buf = append(append(e.buf[:0], e.whole...), data...)
		setOrigin(e.buf, h.Seq, h.Timestamp, h.PublisherID)
		if e.send(ctx, e.buf, 1) {
			e.nExported++
		}
		return
	}
	room := limit - int64(len(e.split))
	if room < 1 {
		e.limiter.log(e.g, "refused sample", "topic", e.topic.Name, "err",
			fmt.Errorf("export %q: the NATS server's max payload of %d bytes leaves no room behind the %d-byte header: %w",
				e.topic.Name, limit, len(e.split), ErrPayloadTooLarge))
		e.c.refused.Add(1)
		return
	}
	count := (int64(len(data)) + room - 1) / room
	for i, off := int64(0), int64(0); i < count; i++ {
		end := min(off+room, int64(len(data)))
		e.buf = append(append(e.buf[:0], e.split...), data[off:end]...)
		setOrigin(e.buf, h.Seq, h.Timestamp, h.PublisherID)
		setPart(e.buf, uint64(len(data)), uint32(i), uint32(count), uint64(off))
		if !e.send(ctx, e.buf, 1) {
			return // the importer drops the incomplete message
		}
		off = end
	}
	e.nExported++
}

// send publishes one NATS message carrying n samples. Under PolicyBlock it
// waits while NATS refuses for want of a connection (the reconnect buffer
// is full) and retries; otherwise such a message is dropped (its n samples
// counted). It reports whether the message went out.
func (e *exporter) send(ctx context.Context, b []byte, n uint64) bool {
	for attempt := 0; ; attempt++ {
		err := e.g.publish(e.subject, b)
		if err == nil {
			return true
		}
		retry := errors.Is(err, nats.ErrReconnectBufExceeded) || errors.Is(err, errJSStalled)
		if retry && e.g.opts.Policy == PolicyBlock && ctx.Err() == nil {
			if attempt == 0 {
				e.limiter.log(e.g, "NATS not accepting; waiting (policy block)", "topic", e.topic.Name, "err", err)
			}
			sleep(ctx, e.g.backoff(min(attempt, 3)))
			continue
		}
		counter := &e.c.dropped
		if errors.Is(err, nats.ErrMaxPayload) {
			counter = &e.c.refused
			err = fmt.Errorf("export %q: %d-byte NATS message: %w: %w", e.topic.Name, len(b), ErrPayloadTooLarge, err)
		}
		e.limiter.log(e.g, "sample not exported", "topic", e.topic.Name, "err", err) // before counting: see importer.refuse
		counter.Add(n)
		return false
	}
}

// limiter rate-limits a repeated error log to one line per second, with
// the count of suppressed lines. It is used by one goroutine at a time.
type limiter struct {
	last       time.Time
	suppressed int
}

func (l *limiter) log(g *Gateway, msg string, args ...any) {
	now := time.Now()
	if now.Sub(l.last) < time.Second {
		l.suppressed++
		return
	}
	if l.suppressed > 0 {
		args = append(args, "suppressed", l.suppressed)
	}
	l.last, l.suppressed = now, 0
	g.log.Error(msg, args...)
}
