package gateway

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"strconv"
	"sync"
	"sync/atomic"
	"time"
)

// The raw import connection. Core-NATS imports do not go through nats.go,
// which copies every received message into a fresh allocation and hands
// it to a goroutine per subscription: a gateway with imports opens a
// second NATS connection of its own (plain TCP; rawConfigFor says when
// nats.go is used instead), subscribes every imported subject on it and
// reads it on one goroutine with a rawReader (rawread.go), which hands
// each message's payload, still in its read buffer, to importer.handle:
// the copy into the loaned chunk is the only one after the kernel's.
//
// The connection sends CONNECT (verbose and pedantic off, no echo,
// headers on: HMSG headers are skipped, the gateway uses none), SUB per
// imported subject (sid = the importer's index + 1), then PING; the first
// PONG means the server has the subscriptions. It answers PING with PONG
// and sends a PING every PingInterval of the NATS options (nats.go's
// default two minutes); MaxPingsOut unanswered PINGs close the connection
// as stale. On stop it sends UNSUB for each subject before closing.
//
// A lost connection (server gone, stale, malformed frame) is re-dialled
// with the gateway's backoff, cycling through the URLs of
// Options.NATSURL, forever, and counted in Stats.Reconnects (the
// exporters' nats.go connection counts its own). A malformed frame is
// logged with what was wrong and counted in Stats.Refused. A message the
// connection loss cut is never delivered; the parts of a split message
// lost with it drop that message (reassemble.go). A slow importer stops
// reading, and TCP backpressure slows the server's writes; a server that
// gives up on it (slow consumer) closes the connection: the messages it
// discarded show as gaps at the importer (Stats.Gaps) and the reconnection
// is counted. All imported topics share the reading goroutine, so under
// PolicyBlock one blocked topic holds back the others, as one slow
// nats.go connection would.
//
// A server that requires TLS makes the gateway fall back to nats.go
// subscriptions for good (logged).

// errRawUnsupported wraps what the raw import connection cannot do.
var errRawUnsupported = errors.New("not supported by the raw import connection")

// rawImport is a gateway's raw import connection.
type rawImport struct {
	g     *Gateway
	cfg   rawConfig
	imps  []*importer // by sid - 1
	buf   []byte      // the read buffer, kept across connections
	ready chan struct{}
	once  sync.Once
}

func newRawImport(g *Gateway, cfg rawConfig) *rawImport {
	return &rawImport{g: g, cfg: cfg, imps: g.order, ready: make(chan struct{})}
}

func (r *rawImport) setReady() { r.once.Do(func() { close(r.ready) }) }

// run keeps the connection up until ctx ends.
func (r *rawImport) run(ctx context.Context) {
	g := r.g
	for attempt, sessions, k := 0, 0, 0; ctx.Err() == nil; k++ {
		srv := r.cfg.servers[k%len(r.cfg.servers)]
		start := time.Now()
		err := r.session(ctx, srv, sessions)
		if ctx.Err() != nil {
			return
		}
		if errors.Is(err, errRawUnsupported) {
			g.log.Warn("importing through nats.go", "reason", err)
			if err := g.subscribeImports(g.nc.Load()); err != nil {
				g.log.Error("subscribe imports", "err", err)
			}
			r.setReady()
			return
		}
		var se *rawSessionError
		if errors.As(err, &se) { // it was up: a reconnection follows
			sessions++
			if !errors.Is(err, errNATSProtocol) { // logged as an error already
				g.log.Warn("import connection to NATS lost", "addr", srv.addr, "err", err)
			}
			if time.Since(start) > g.opts.MaxBackoff {
				attempt = 0
			}
		} else {
			g.log.Warn("import connection to NATS failed; retrying", "addr", srv.addr, "err", err)
		}
		if !sleep(ctx, g.backoff(attempt)) {
			return
		}
		attempt++
	}
}

// rawSessionError is the end of a connection that was up.
type rawSessionError struct{ err error }

func (e *rawSessionError) Error() string { return e.err.Error() }
func (e *rawSessionError) Unwrap() error { return e.err }

// serverInfo is the part of the server's INFO the connection uses.
type serverInfo struct {
	MaxPayload  int64 `json:"max_payload"`
	TLSRequired bool  `json:"tls_required"`
}

// connectInfo is the CONNECT the connection sends.
type connectInfo struct {
	Verbose  bool   `json:"verbose"`
	Pedantic bool   `json:"pedantic"`
	Name     string `json:"name"`
	Lang     string `json:"lang"`
	Version  string `json:"version"`
	Protocol int    `json:"protocol"`
	Echo     bool   `json:"echo"`
	Headers  bool   `json:"headers"`
	User     string `json:"user,omitempty"`
	Pass     string `json:"pass,omitempty"`
	Token    string `json:"auth_token,omitempty"`
}

// session dials srv, subscribes and reads until the connection ends or ctx
// does. sessions counts the earlier connections that were up. The error
// that ends a connection that was up (subscribed) is a *rawSessionError.
func (r *rawImport) session(ctx context.Context, srv rawServer, sessions int) (err error) {
	d := net.Dialer{Timeout: r.cfg.timeout}
	conn, err := d.DialContext(ctx, "tcp", srv.addr)
	if err != nil {
		return fmt.Errorf("dial: %w", err)
	}
	defer conn.Close()
	_ = conn.SetReadDeadline(time.Now().Add(r.cfg.timeout))
	rd := newRawReader(conn, r.buf, defaultMaxPayload)
	defer func() { r.buf = rd.buf }()
	var f rawFrame
	if err := rd.next(&f); err != nil {
		return fmt.Errorf("read INFO: %w", err)
	}
	if f.op != rawInfo {
		return fmt.Errorf("server's first operation is not INFO: %w", errNATSProtocol)
	}
	var info serverInfo
	if err := json.Unmarshal(f.arg, &info); err != nil {
		return fmt.Errorf("decode INFO: %v: %w", err, errNATSProtocol)
	}
	if info.TLSRequired {
		return fmt.Errorf("server %s requires TLS: %w", srv.addr, errRawUnsupported)
	}
	rd.setMaxPayload(info.MaxPayload)
	hello, err := json.Marshal(connectInfo{Name: r.cfg.name, Lang: "go", Version: "parallax-raw-1", Protocol: 1,
		Headers: true, User: srv.user, Pass: srv.pass, Token: srv.token})
	if err != nil {
		return fmt.Errorf("encode CONNECT: %w", err)
	}
	out := append(append([]byte("CONNECT "), hello...), "\r\n"...)
	for k, imp := range r.imps {
		out = append(out, "SUB "+imp.subject+" "+strconv.Itoa(k+1)+"\r\n"...)
	}
	w := &rawWriter{conn: conn, timeout: r.cfg.timeout}
	if err := w.write(append(out, "PING\r\n"...)); err != nil {
		return fmt.Errorf("send CONNECT and SUB: %w", err)
	}
	var pingsOut atomic.Int32
	done := make(chan struct{})
	var wg sync.WaitGroup
	defer wg.Wait()
	defer close(done)
	var stale atomic.Bool
	wg.Go(func() { r.keepAlive(ctx, conn, w, &pingsOut, &stale, done) })
	up := false
	err = r.read(rd, conn, w, &pingsOut, sessions, &up)
	switch {
	case ctx.Err() != nil:
		return ctx.Err()
	case stale.Load():
		err = fmt.Errorf("stale connection: %d PINGs unanswered", r.cfg.maxPingsOut)
	case errors.Is(err, errNATSProtocol):
		r.g.protoErrors.Add(1)
		r.g.log.Error("malformed frame from NATS on the import connection", "addr", srv.addr, "err", err)
	}
	if !up {
		return err
	}
	return &rawSessionError{err}
}

// read handles frames until the connection fails. The first PONG sets
// *up: the server has the subscriptions (a reconnection, when sessions
// connections were up before).
func (r *rawImport) read(rd *rawReader, conn net.Conn, w *rawWriter, pingsOut *atomic.Int32, sessions int, up *bool) error {
	var f rawFrame
	var lastErr []byte
	for {
		if err := rd.next(&f); err != nil {
			if lastErr != nil {
				return fmt.Errorf("server said -ERR %s, then: %w", lastErr, err)
			}
			if errors.Is(err, io.EOF) {
				return fmt.Errorf("server closed the connection (restart, shutdown, or it gave up on a slow consumer): %w", err)
			}
			return err
		}
		switch f.op {
		case rawMsg:
			if f.sid >= 1 && f.sid <= uint64(len(r.imps)) {
				r.imps[f.sid-1].handle(f.payload)
			}
		case rawPing:
			if err := w.write([]byte("PONG\r\n")); err != nil {
				return fmt.Errorf("send PONG: %w", err)
			}
		case rawPong:
			pingsOut.Store(0)
			if !*up {
				*up = true
				_ = conn.SetReadDeadline(time.Time{})
				if sessions > 0 {
					r.g.reconnects.Add(1)
					r.g.log.Info("import connection to NATS re-established")
				}
				r.setReady()
			}
		case rawErr:
			lastErr = append(lastErr[:0], f.arg...)
			r.g.log.Error("NATS error on the import connection", "err", string(f.arg))
		case rawInfo:
			var info serverInfo
			if json.Unmarshal(f.arg, &info) == nil && info.MaxPayload > 0 {
				rd.setMaxPayload(info.MaxPayload)
			}
		}
	}
}

// keepAlive sends a PING every ping interval and closes conn when too many
// are unanswered or when ctx ends (after unsubscribing), until done.
func (r *rawImport) keepAlive(ctx context.Context, conn net.Conn, w *rawWriter, pingsOut *atomic.Int32, stale *atomic.Bool, done <-chan struct{}) {
	t := time.NewTicker(r.cfg.pingInterval)
	defer t.Stop()
	for {
		select {
		case <-done:
			return
		case <-ctx.Done():
			var out []byte
			for k := range r.imps {
				out = append(out, "UNSUB "+strconv.Itoa(k+1)+"\r\n"...)
			}
			if err := w.write(out); err != nil {
				r.g.log.Debug("unsubscribe imports on stop", "err", err)
			}
			_ = conn.Close()
			return
		case <-t.C:
			if int(pingsOut.Add(1)) > r.cfg.maxPingsOut {
				stale.Store(true)
				_ = conn.Close()
				return
			}
			if err := w.write([]byte("PING\r\n")); err != nil {
				_ = conn.Close()
				return
			}
		}
	}
}

// rawWriter serializes the connection's (rare) writes.
type rawWriter struct {
	mu      sync.Mutex
	conn    net.Conn
	timeout time.Duration
}

func (w *rawWriter) write(b []byte) error {
	w.mu.Lock()
	defer w.mu.Unlock()
	_ = w.conn.SetWriteDeadline(time.Now().Add(w.timeout))
	_, err := w.conn.Write(b)
	return err
}
