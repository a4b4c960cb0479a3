package gateway

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/parallax-ipc/parallax/internal/clientrt"
)

// A Gateway bridges topics between one Parallax domain and NATS. Use [New];
// the zero value is invalid. A Gateway must not be copied. Run runs it once;
// Stats, ID and Ready are safe for concurrent use, also while Run runs.
// There is no Close: cancelling Run's context stops the gateway and
// releases everything it holds.
type Gateway struct {
	opts    Options
	log     *slog.Logger
	id      string
	exports []*exporter
	imports map[string]*importer
	order   []*importer // imports in Options order

	reconnects atomic.Uint64
	maxPayload atomic.Int64 // the NATS server's, defaultMaxPayload until known
	js         *jetStream   // nil without Options.Stream (jetstream.go)
	raw        *rawImport   // nil when imports go through nats.go (rawimport.go)
	rawWhy     string       // why they do
	// protoErrors counts malformed frames on the raw import connection.
	protoErrors atomic.Uint64

	ran        atomic.Bool
	closing    atomic.Bool // Run is closing the NATS connection
	nc         atomic.Pointer[nats.Conn]
	natsUp     chan struct{} // signalled (buffered 1) on connect and reconnect
	ready      chan struct{}
	readyMu    sync.Mutex
	localReady bool
	natsReady  bool
}

// New checks opts and returns a gateway ready to [Gateway.Run]. It does no
// I/O.
func New(opts Options) (*Gateway, error) {
	opts.setDefaults()
	if err := opts.validate(); err != nil {
		return nil, err
	}
	if opts.ID == "" {
		var b [8]byte
		_, _ = rand.Read(b[:])
		opts.ID = hex.EncodeToString(b[:])
	}
	g := &Gateway{opts: opts, id: opts.ID, imports: map[string]*importer{},
		natsUp: make(chan struct{}, 1), ready: make(chan struct{})}
	g.log = opts.Logger.With("gateway", g.id)
	g.maxPayload.Store(defaultMaxPayload)
	for _, t := range opts.Import {
		i := newImporter(g, t)
		g.imports[t.Name] = i
		g.order = append(g.order, i)
	}
	for _, t := range opts.Export {
		g.exports = append(g.exports, newExporter(g, t))
	}
	if cfg, why := rawConfigFor(&g.opts, g.id); why == "" {
		g.raw = newRawImport(g, cfg)
	} else {
		g.rawWhy = why
	}
	return g, nil
}

// ID returns the gateway id carried in the header of its messages.
func (g *Gateway) ID() string { return g.id }

// Ready is closed once the gateway is connected to NATS (its
// subscriptions registered with the server) and has created its local
// endpoints for the first time: from then on, published samples cross.
func (g *Gateway) Ready() <-chan struct{} { return g.ready }

// defaultMaxPayload is the NATS server's default max_payload, assumed
// until the server tells its own.
const defaultMaxPayload = 1 << 20

// Stats returns the gateway's counters: the sums of [Gateway.TopicStats].
func (g *Gateway) Stats() Stats {
	s := Stats{Reconnects: g.reconnects.Load(), Refused: g.protoErrors.Load()}
	for _, t := range g.TopicStats() {
		s.add(t)
	}
	s.Forwarded = s.Exported + s.Imported
	return s
}

// TopicStats returns the counters of each exported topic, then of each
// imported one, in the order of [Options].Export and Import.
func (g *Gateway) TopicStats() []TopicStats {
	out := make([]TopicStats, 0, len(g.exports)+len(g.order))
	for _, e := range g.exports {
		out = append(out, e.stats())
	}
	for _, i := range g.order {
		out = append(out, i.stats())
	}
	return out
}

func (g *Gateway) setReady(local, nats bool) {
	g.readyMu.Lock()
	defer g.readyMu.Unlock()
	g.localReady = g.localReady || local
	g.natsReady = g.natsReady || nats
	if g.localReady && g.natsReady {
		select {
		case <-g.ready:
		default:
			close(g.ready)
		}
	}
}

// backoff returns the delay after attempt failed attempts (0-based).
func (g *Gateway) backoff(attempt int) time.Duration {
	d := g.opts.MinBackoff
	for range min(attempt, 30) {
		d *= 2
		if d >= g.opts.MaxBackoff {
			return g.opts.MaxBackoff
		}
	}
	return d
}

// sleep waits d or until ctx ends; it reports whether ctx is still alive.
func sleep(ctx context.Context, d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return true
	case <-ctx.Done():
		return false
	}
}

// Run connects to NATS and to the router and bridges until ctx ends, then
// closes its endpoints, flushes what it published to NATS (up to one
// second) and returns nil. NATS and router outages are survived, not
// returned. Run may be called once.
func (g *Gateway) Run(ctx context.Context) error {
	if !g.ran.CompareAndSwap(false, true) {
		return fmt.Errorf("gateway %s: Run called twice: %w", g.id, ErrInvalidArgument)
	}
	nc, err := g.connect()
	if err != nil {
		return err
	}
	g.nc.Store(nc)
	defer func() {
		g.closeJetStream()
		if err := nc.FlushTimeout(time.Second); err != nil && !errors.Is(err, nats.ErrConnectionClosed) {
			g.log.Warn("flush NATS on exit", "err", err)
		}
		g.closing.Store(true)
		for _, imp := range g.order { // keep nats.go's slow-consumer drops
			if sub := imp.natsSub.Swap(nil); sub != nil {
				if n, err := sub.Dropped(); err == nil {
					imp.c.dropped.Add(uint64(n))
				}
			}
		}
		nc.Close()
	}()
	switch {
	case g.opts.Stream != "":
		if err := g.openJetStream(nc); err != nil {
			return err
		}
	case g.raw == nil:
		if len(g.order) > 0 {
			g.log.Debug("importing through nats.go", "reason", g.rawWhy)
		}
		if err := g.subscribeImports(nc); err != nil {
			return err
		}
	}
	var wg sync.WaitGroup
	defer wg.Wait()
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	if g.raw != nil {
		g.log.Debug("importing through the gateway's own NATS connection")
		wg.Go(func() { g.raw.run(ctx) })
	}
	wg.Go(func() { g.waitNATS(ctx, nc) })
	if g.opts.StatsInterval > 0 {
		wg.Go(func() { g.logStats(ctx) })
	}
	g.runLocal(ctx)
	ns := nc.Stats()
	g.log.Info("gateway stopped", "stats", g.Stats().String(), "nats_out_msgs", ns.OutMsgs, "nats_in_msgs", ns.InMsgs)
	return nil
}

// subscribeImports subscribes the imported subjects through nats.go.
func (g *Gateway) subscribeImports(nc *nats.Conn) error {
	for _, imp := range g.order {
		sub, err := nc.Subscribe(imp.subject, imp.onMsg)
		if err == nil {
			err = sub.SetPendingLimits(g.opts.PendingMsgs, g.opts.PendingBytes)
		}
		if err != nil {
			return fmt.Errorf("gateway %s: subscribe to NATS subject %q: %w", g.id, imp.subject, err)
		}
		imp.natsSub.Store(sub)
	}
	return nil
}

func (g *Gateway) connect() (*nats.Conn, error) {
	opts := []nats.Option{
		nats.Name("parallax-gateway " + g.id),
		nats.NoEcho(),
		nats.RetryOnFailedConnect(true),
		nats.MaxReconnects(-1),
		nats.CustomReconnectDelay(func(attempts int) time.Duration { return g.backoff(attempts - 1) }),
		nats.ConnectHandler(func(c *nats.Conn) {
			g.setMaxPayload(c)
			g.signalNATS()
		}),
		nats.ReconnectHandler(func(c *nats.Conn) {
			g.reconnects.Add(1)
			g.setMaxPayload(c)
			g.log.Info("reconnected to NATS", "url", c.ConnectedUrlRedacted())
			g.signalNATS()
		}),
		nats.DisconnectErrHandler(func(_ *nats.Conn, err error) {
			// nats.go reports a clean Close as a disconnection without
			// an error: that is the gateway's own stop.
			if err == nil && g.closing.Load() {
				g.log.Debug("disconnected from NATS on stop")
				return
			}
			g.log.Warn("disconnected from NATS", "err", err)
		}),
		nats.ErrorHandler(func(_ *nats.Conn, sub *nats.Subscription, err error) {
			subj := ""
			if sub != nil {
				subj = sub.Subject
			}
			g.log.Error("NATS error", "subject", subj, "err", err)
		}),
	}
	nc, err := nats.Connect(g.opts.NATSURL, append(opts, g.opts.NATSOptions...)...)
	if err != nil {
		return nil, fmt.Errorf("gateway %s: connect to NATS at %s: %w", g.id, g.opts.NATSURL, err)
	}
	return nc, nil
}

// setMaxPayload records the max payload of the server c is connected to.
func (g *Gateway) setMaxPayload(c *nats.Conn) {
	if n := c.MaxPayload(); n > 0 {
		g.maxPayload.Store(n)
	}
}

// publish sends one message to NATS: buffered by nats.go (core NATS) or
// to the stream with an asynchronous acknowledgement (JetStream).
func (g *Gateway) publish(subject string, b []byte) error {
	if g.js != nil {
		return g.js.publish(subject, b)
	}
	return g.nc.Load().Publish(subject, b)
}

func (g *Gateway) signalNATS() {
	select {
	case g.natsUp <- struct{}{}:
	default:
	}
}

// waitNATS marks NATS ready once the connection is up and the server has
// processed the subscriptions (a flush round trip, and the raw import
// connection's first PONG), and, with JetStream, the stream and the
// consumers exist.
func (g *Gateway) waitNATS(ctx context.Context, nc *nats.Conn) {
	if g.raw != nil {
		select {
		case <-g.raw.ready:
		case <-ctx.Done():
			return
		}
	}
	for attempt := 0; ; attempt++ {
		if nc.IsConnected() {
			err := nc.FlushTimeout(5 * time.Second)
			if err == nil && g.js != nil {
				err = g.js.setup(ctx)
			}
			if err == nil {
				g.log.Info("connected to NATS", "url", nc.ConnectedUrlRedacted())
				g.setReady(false, true)
				return
			}
			if ctx.Err() == nil {
				g.log.Warn("NATS not ready; retrying", "err", err)
			}
		}
		select {
		case <-ctx.Done():
			return
		case <-g.natsUp:
		case <-time.After(g.backoff(attempt)):
		}
	}
}

func (g *Gateway) logStats(ctx context.Context) {
	t := time.NewTicker(g.opts.StatsInterval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			g.log.Info("gateway stats", "stats", g.Stats().String())
		}
	}
}

// runLocal keeps a session of local endpoints alive until ctx ends,
// starting a new one with backoff whenever the router goes away.
func (g *Gateway) runLocal(ctx context.Context) {
	for attempt, sessions := 0, 0; ctx.Err() == nil; {
		rt, err := clientrt.Acquire(ctx, clientrt.Options{Domain: g.opts.Domain, Socket: g.opts.Socket, Name: "parallax-gateway"})
		if err != nil {
			if ctx.Err() != nil {
				return
			}
			d := g.backoff(attempt)
			g.log.Warn("no router; retrying", "domain", g.opts.Domain, "socket", g.opts.Socket, "in", d, "err", err)
			attempt++
			sleep(ctx, d)
			continue
		}
		if sessions > 0 {
			g.reconnects.Add(1)
			g.log.Info("router back; local endpoints re-created")
		}
		sessions++
		start := time.Now()
		g.session(ctx, rt)
		rt.Release()
		if ctx.Err() != nil {
			return
		}
		g.log.Warn("router connection lost; closing local endpoints")
		if time.Since(start) > g.opts.MaxBackoff {
			attempt = 0
		}
		d := g.backoff(attempt)
		attempt++
		sleep(ctx, d)
	}
}

// session runs the local endpoints on rt until rt's control connection
// ends or ctx does.
func (g *Gateway) session(ctx context.Context, rt *clientrt.Runtime) {
	sctx, cancel := context.WithCancel(ctx)
	defer cancel()
	for _, imp := range g.imports {
		imp.start(sctx)
	}
	var wg sync.WaitGroup
	for _, e := range g.exports {
		_ = e.open(sctx) // first attempt inline, so Ready means subscribed
		wg.Go(func() { e.run(sctx) })
	}
	if g.opts.ReportInterval > 0 {
		wg.Go(func() { g.reportLoop(sctx, rt) }) // report.go
	}
	g.setReady(true, false)
	select {
	case <-rt.Done():
	case <-ctx.Done():
	}
	cancel()
	wg.Wait()
	for _, imp := range g.imports {
		imp.stop()
	}
	if ctx.Err() != nil {
		g.finalReport(ctx, rt)
	}
}
