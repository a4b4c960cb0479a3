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

// origin names a stream whose order is kept: one publisher behind one
// exporting gateway.
type origin struct {
	gateway   string
	publisher uint32
}

// An importer receives one NATS subject and publishes its messages on the
// local topic. onMsg runs on the subscription's nats.go goroutine (one at a
// time); start and stop run on the gateway's session goroutine; mu orders
// them.
type importer struct {
	g       *Gateway
	topic   Topic
	subject string
	natsSub atomic.Pointer[nats.Subscription]
	ownID   atomic.Uint32 // id of pub, 0 when none (router ids start at 1)

	mu       sync.Mutex
	ctx      context.Context // the session's, nil between sessions
	pub      *publisher.Publisher
	typ      Type      // pub's type
	retryAt  time.Time // no publisher creation before then
	attempt  int       // failed creations in a row
	lastErr  error     // why the last creation failed
	lastType Type      // the type it was attempted with
	origins  map[origin]uint64
	limiter  limiter
}

// isOwn reports whether local publisher id is this importer's publisher.
func (i *importer) isOwn(id uint32) bool { return id != 0 && i.ownID.Load() == id }

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
	pub, err := publisher.New(i.ctx, i.topic.Name, publisher.Options{
		Domain: i.g.opts.Domain, Socket: i.g.opts.Socket,
		TypeName: t.Name, TypeSize: t.Size, TypeAlign: t.Align,
	})
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

// onMsg publishes one NATS message locally.
func (i *importer) onMsg(m *nats.Msg) {
	meta, err := DecodeMeta(m.Header)
	if err != nil {
		i.refuse(fmt.Errorf("import %q: message on %q: %w", i.topic.Name, m.Subject, err))
		return
	}
	if meta.Gateway == i.g.id {
		i.g.c.looped.Add(1)
		return
	}
	if want := i.topic.Type; want != nil && meta.Type != *want {
		i.refuse(fmt.Errorf("import %q: message of type %v from gateway %s, topic configured as %v: %w",
			i.topic.Name, meta.Type, meta.Gateway, *want, parallax.ErrIncompatibleType))
		return
	}
	i.mu.Lock()
	defer i.mu.Unlock()
	i.track(meta)
	if i.pub == nil {
		if err := i.create(meta.Type); err != nil {
			if errors.Is(err, parallax.ErrIncompatibleType) {
				i.refuse(err)
			} else {
				i.drop(err)
			}
			return
		}
	}
	if meta.Type != i.typ {
		i.refuse(fmt.Errorf("import %q: message of type %v from gateway %s, local publisher has %v: %w",
			i.topic.Name, meta.Type, meta.Gateway, i.typ, parallax.ErrIncompatibleType))
		return
	}
	if err := i.pub.Send(m.Data); err != nil {
		i.drop(fmt.Errorf("import %q: publish %d bytes locally: %w", i.topic.Name, len(m.Data), err))
		return
	}
	i.g.c.imported.Add(1)
}

// track counts sequence gaps and reorderings per origin. A sequence of 1
// starts the stream afresh (a restarted origin).
func (i *importer) track(m Meta) {
	k := origin{m.Gateway, m.Publisher}
	last, seen := i.origins[k]
	switch {
	case !seen || m.Seq == 1:
	case m.Seq > last+1:
		i.g.c.gaps.Add(m.Seq - last - 1)
	case m.Seq <= last:
		i.g.c.reordered.Add(1)
		return
	}
	i.origins[k] = m.Seq
}

func (i *importer) refuse(err error) {
	i.g.c.refused.Add(1)
	i.logLimited("refused message", err)
}

func (i *importer) drop(err error) {
	i.g.c.dropped.Add(1)
	i.logLimited("message not imported", err)
}

// logLimited may run before mu is taken (refusals); the limiter is only
// touched from the subscription goroutine, so it needs no lock.
func (i *importer) logLimited(msg string, err error) {
	i.limiter.log(i.g, msg, "topic", i.topic.Name, "err", err)
}
