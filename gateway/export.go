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

// An exporter subscribes to one local topic and publishes its samples to
// NATS. Its goroutine is the only user of sub's Take and of msg.
type exporter struct {
	g       *Gateway
	topic   Topic
	typ     Type
	subject string
	imp     *importer // the same topic's importer, or nil (loop prevention)

	sub     atomic.Pointer[subscriber.Subscriber] // current local subscriber, nil when none
	msg     *nats.Msg
	typStr  string
	limiter limiter
}

// open tries once to create the local subscriber.
func (e *exporter) open(ctx context.Context) error {
	if e.sub.Load() != nil {
		return nil
	}
	sub, err := subscriber.New(ctx, e.topic.Name, subscriber.Options{
		Domain: e.g.opts.Domain, Socket: e.g.opts.Socket,
		TypeName: e.typ.Name, TypeSize: e.typ.Size, TypeAlign: e.typ.Align,
		QueueCapacity: e.g.opts.QueueCapacity, Policy: subscriber.DiscardOldest,
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
	e.g.c.dropped.Add(sub.Dropped())
	if err := sub.Close(); err != nil {
		e.g.log.Debug("close export subscriber", "topic", e.topic.Name, "err", err)
	}
}

// run forwards samples until ctx ends, re-creating the subscriber with
// backoff when it fails.
func (e *exporter) run(ctx context.Context) {
	defer e.close()
	e.msg = &nats.Msg{Subject: e.subject, Header: nats.Header{}}
	e.typStr = e.typ.String()
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
		sub := e.sub.Load()
		for {
			s, err := sub.Take(ctx)
			if err != nil {
				if ctx.Err() == nil {
					e.g.log.Warn("export subscriber failed; re-creating", "topic", e.topic.Name, "err", err)
					e.close()
				}
				break
			}
			e.forward(s)
			if err := s.Release(); err != nil {
				e.g.log.Warn("release exported sample", "topic", e.topic.Name, "err", err)
			}
		}
	}
}

// forward publishes one sample to NATS (nats.go copies it into its buffer
// before PublishMsg returns, so the sample may be released afterwards).
func (e *exporter) forward(s subscriber.Sample) {
	h := s.Header()
	if e.imp != nil && e.imp.isOwn(h.PublisherID) {
		e.g.c.looped.Add(1)
		return
	}
	m := Meta{Seq: h.Seq, Timestamp: h.Timestamp, Publisher: h.PublisherID, Gateway: e.g.id}
	m.encode(e.msg.Header, e.typStr)
	data := s.Bytes()
	e.msg.Data = data
	defer func() { e.msg.Data = nil }()
	nc := e.g.nc.Load()
	if hl, limit := headerLen(e.msg.Header), nc.MaxPayload(); limit > 0 && int64(len(data)+hl) > limit {
		e.g.c.refused.Add(1)
		e.limiter.log(e.g, "refused sample", "topic", e.topic.Name, "err",
			fmt.Errorf("export %q: %d-byte sample (+%d header bytes) exceeds the NATS server's max payload of %d bytes: %w",
				e.topic.Name, len(data), hl, limit, ErrPayloadTooLarge))
		return
	}
	if err := nc.PublishMsg(e.msg); err != nil {
		if errors.Is(err, nats.ErrMaxPayload) {
			e.g.c.refused.Add(1)
			err = fmt.Errorf("export %q: %d-byte sample: %w: %w", e.topic.Name, len(data), ErrPayloadTooLarge, err)
		} else {
			e.g.c.dropped.Add(1)
		}
		e.limiter.log(e.g, "sample not exported", "topic", e.topic.Name, "err", err)
		return
	}
	e.g.c.exported.Add(1)
}

// headerLen is the encoded size of h (NATS/1.0 line, "Key: value" lines,
// blank line), as counted against the server's max payload.
func headerLen(h nats.Header) int {
	n := len("NATS/1.0\r\n") + 2
	for k, vs := range h {
		for _, v := range vs {
			n += len(k) + 2 + len(v) + 2
		}
	}
	return n
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
