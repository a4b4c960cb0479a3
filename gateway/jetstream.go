package gateway

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// Persistence with JetStream ([Options].Stream). Exporters publish to the
// stream asynchronously: nats.go keeps at most jsMaxPending messages
// unacknowledged (a publish past that waits, then fails with
// errJSStalled, which PolicyBlock retries), and a message the stream does
// not acknowledge is counted as dropped. nats.go keeps each message until
// its acknowledgement, so the exporter copies it: one allocation per
// message that core NATS does not need. Importers consume with a durable
// pull consumer each and acknowledge every message once it is published
// locally (or refused); a restarted importer resumes after the last
// acknowledged message. A new durable consumer starts with the messages
// published after its creation. Messages the consumer had pulled but not
// yet handled when the gateway stopped are redelivered by the server after
// the consumer's AckWait (30 s by default), possibly after newer ones: the
// importer publishes them and counts them as reordered. A part of a split
// message that JetStream does not acknowledge is counted as dropped (per
// part), and the importer drops the incomplete message.

// jsMaxPending bounds the unacknowledged asynchronous publishes.
const jsMaxPending = 4096

// errJSStalled is the error of a publish that waited too long for
// acknowledgements.
var errJSStalled = jetstream.ErrTooManyStalledMsgs

// jetStream is a gateway's JetStream state.
type jetStream struct {
	g   *Gateway
	js  jetstream.JetStream
	mu  sync.Mutex // guards cc and lim
	cc  []jetstream.ConsumeContext
	lim limiter
}

// openJetStream sets up the JetStream context (no I/O).
func (g *Gateway) openJetStream(nc *nats.Conn) error {
	j := &jetStream{g: g}
	js, err := jetstream.New(nc,
		jetstream.WithPublishAsyncMaxPending(jsMaxPending),
		jetstream.WithPublishAsyncErrHandler(j.publishFailed))
	if err != nil {
		return fmt.Errorf("gateway %s: JetStream: %w", g.id, err)
	}
	j.js = js
	g.js = j
	return nil
}

// publish sends a copy of b to the stream.
func (j *jetStream) publish(subject string, b []byte) error {
	_, err := j.js.PublishAsync(subject, append([]byte(nil), b...))
	return err
}

// publishFailed counts a message the stream did not acknowledge.
func (j *jetStream) publishFailed(_ jetstream.JetStream, m *nats.Msg, err error) {
	for _, e := range j.g.exports {
		if e.subject == m.Subject {
			e.c.dropped.Add(frameMessages(m.Data))
		}
	}
	j.mu.Lock()
	defer j.mu.Unlock()
	j.lim.log(j.g, "JetStream did not acknowledge a message", "subject", m.Subject, "err", err)
}

// setup creates the stream (for exports) and starts the durable
// consumers (for imports). It runs once NATS is connected; on error the
// caller retries it.
func (j *jetStream) setup(ctx context.Context) error {
	g := j.g
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	if len(g.exports) > 0 {
		_, err := j.js.CreateStream(ctx, jetstream.StreamConfig{Name: g.opts.Stream, Subjects: []string{g.opts.Prefix + ">"}})
		if err != nil && !errors.Is(err, jetstream.ErrStreamNameAlreadyInUse) {
			return fmt.Errorf("create JetStream stream %q: %w", g.opts.Stream, err)
		}
	}
	j.mu.Lock()
	defer j.mu.Unlock()
	for _, imp := range g.order[len(j.cc):] {
		name := durableName(g.opts.Durable, g.id, imp.topic.Name)
		cons, err := j.js.CreateOrUpdateConsumer(ctx, g.opts.Stream, jetstream.ConsumerConfig{
			Durable: name, FilterSubject: imp.subject,
			AckPolicy: jetstream.AckExplicitPolicy, DeliverPolicy: jetstream.DeliverNewPolicy,
		})
		if err != nil {
			return fmt.Errorf("create JetStream consumer %q on stream %q: %w", name, g.opts.Stream, err)
		}
		cc, err := cons.Consume(imp.onJSMsg, jetstream.PullMaxMessages(512))
		if err != nil {
			return fmt.Errorf("consume with JetStream consumer %q: %w", name, err)
		}
		j.cc = append(j.cc, cc)
	}
	return nil
}

// closeJetStream stops the consumers and waits (up to a second) for the
// outstanding acknowledgements of published messages.
func (g *Gateway) closeJetStream() {
	j := g.js
	if j == nil {
		return
	}
	j.mu.Lock()
	for _, cc := range j.cc {
		cc.Stop()
	}
	j.mu.Unlock()
	select {
	case <-j.js.PublishAsyncComplete():
	case <-time.After(time.Second):
		g.log.Warn("JetStream acknowledgements outstanding on exit", "pending", j.js.PublishAsyncPending())
	}
}

// onJSMsg is the durable consumer's handler.
func (i *importer) onJSMsg(m jetstream.Msg) {
	i.handle(m.Data())
	if err := m.Ack(); err != nil {
		i.g.log.Debug("acknowledge JetStream message", "topic", i.topic.Name, "err", err)
	}
}

// durableName is the durable consumer of topic.
func durableName(prefix, id, topic string) string {
	if prefix == "" {
		prefix = "parallax_" + id
	}
	return strings.Map(func(r rune) rune {
		if r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '-' || r == '_' {
			return r
		}
		return '_'
	}, prefix+"_"+topic)
}
