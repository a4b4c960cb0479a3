package roudi

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"os"
	"sync"
	"sync/atomic"
	"time"

	"github.com/parallax-ipc/parallax/roudi/internal/core"

	"github.com/parallax-ipc/parallax/internal/discovery"
	"github.com/parallax-ipc/parallax/internal/sys"
	"github.com/parallax-ipc/parallax/internal/wire"
	"github.com/parallax-ipc/parallax/roudi/procmon"
)

// Options tune a [Server] beyond its [Config]. The zero value is ready to
// use.
type Options struct {
	// Logger receives every log record of the router (its process
	// monitor's included); the embedder's handler decides the level. Nil
	// means text on standard error at the [Config]'s LogLevel.
	Logger *slog.Logger
	// TickInterval is the real time of one core tick; 0 means 10 ms.
	TickInterval time.Duration
	// Monitor selects the process-exit monitor (procmon.ModeAuto when
	// empty: eBPF when privileged, else pidfd, with the reason logged).
	// Control-socket EOF is always a signal too.
	Monitor procmon.Mode
	// Nice, when non-zero, sets the nice value of the router's threads
	// (negative: more CPU priority, so reclaiming a dead client's chunks
	// is not delayed behind busy clients on a loaded machine; needs
	// CAP_SYS_NICE, otherwise a warning is logged). It applies to the
	// whole process, so an embedding program decides for itself.
	Nice int
	// NoAdopt makes the router start with fresh segments even when the
	// segments of a previous (dead) router of its domain survive in its
	// clients. By default it adopts them and the clients resume.
	NoAdopt bool
	// ResumeGrace is how long an adopting router waits for its previous
	// clients to resume; 0 means DefaultResumeGrace.
	ResumeGrace time.Duration
	// OnReclaim, when set, is called on the router goroutine after a
	// departed client's resources were reclaimed (tests measure
	// death-to-reclaim latency with it). It must not block.
	OnReclaim func(Reclaim)
}

// A Reclaim describes what the router recovered from a departed client.
type Reclaim struct {
	// PID is the client's process id (0 for an adopted client that never
	// resumed).
	PID int32
	// Exited is when the process exited, as the process monitor saw it
	// (with eBPF, the kernel's timestamp of the exit); zero when the
	// client left without the monitor reporting its exit (it closed its
	// connection, or the router was told by the socket first).
	Exited time.Time
	// Done is when the reclaim finished. Done - Exited is the
	// death-to-reclaimed latency that parallax_reclaim_latency_seconds
	// records.
	Done time.Time
}

// A Server is a running router: the I/O shell around the deterministic
// [Router] core. It owns the domain's management and payload segments, the
// control socket and one goroutine per client connection; a single
// goroutine (the one in [Server.Serve]) drives the core, executes its
// actions and is the only one that touches the registry.
//
// Use [Start] (a running router whose Close stops it) or [New] and
// [Server.Serve] (the caller runs the loop); the zero value is invalid.
// Serve may be called once. Close releases the segments; for a server from
// New it must be called after Serve returns (or instead of Serve). Close is
// idempotent. The methods are safe for concurrent use.
type Server struct {
	cfg  *Config
	opts Options
	log  *slog.Logger
	core *core.Router

	path string
	lock *domainLock // held from New to Close (server_lock.go)
	// idents records who may resume as which client (server_identity.go).
	idents *identityFile
	// idMarks records the highest ids handed out, for a successor
	// (server_idmarks.go).
	idMarks *idMarksFile
	ready   chan struct{}

	events chan event
	conns  map[core.ConnID]*serverConn // owned by the Serve goroutine
	// adopted: the segments came from a previous router (server_resume.go);
	// resumeAt is when the grace period ends, resumeDone once it did.
	adopted    bool
	resumeAt   time.Time
	resumeDone bool
	nextID     core.ConnID

	stats serverStats
	obs   observer // introspection counters (introspect.go); owned by the Serve goroutine

	mon serverMonitor // process-exit monitor (server_monitor.go); owned by the Serve goroutine

	segs segFiles // owned-model segments (server_segments.go); owned by the Serve goroutine
	// During a resume's step: the owned fds it handed back, checked
	// (server_adopt.go); resumeFds: the fds of the Resume being handled.
	adopting  map[adoptKey]adoptedFile
	resumeFds []*os.File

	guard guardState // hostile-peer handling (server_guard.go)

	clock serverClock // when the core next needs a tick (server_timer.go); owned by the Serve goroutine

	serveOnce sync.Once
	closed    atomic.Bool

	// Set by Start (start.go): stop cancels the serving goroutine, served
	// is closed when it returned with serveErr.
	stop     context.CancelFunc
	served   chan struct{}
	serveErr error
}

type serverStats struct {
	clients atomic.Int64
}

type serverConn struct {
	id      core.ConnID
	sc      *discovery.ServerConn
	hello   bool
	client  core.ClientID
	version uint16
	done    chan struct{}
	guard   connGuard // rate limit, owned by the read goroutine (server_guard.go)

	helloReqID uint32
}

// New creates the router for cfg (the embedded default when nil): it takes
// the domain's lock (adopting the clients of a previous router that left
// live ones) and starts the process monitor. Segments are created per
// publisher and per connection as clients ask. It does not listen yet:
// [Server.Serve] does.
func New(cfg *Config, opts Options) (_ *Server, err error) {
	if cfg == nil {
		cfg = DefaultConfig()
	}
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	cfg = cfg.Clone()
	s := &Server{cfg: cfg, opts: opts, log: opts.Logger, ready: make(chan struct{}), events: make(chan event, 256), conns: make(map[core.ConnID]*serverConn)}
	if s.log == nil {
		s.log = newLogger(cfg)
	}
	if s.opts.TickInterval <= 0 {
		s.opts.TickInterval = 10 * time.Millisecond
	}
	s.path = cfg.SocketPath()
	defer func() {
		if err != nil {
			s.Close()
		}
	}()
	// One router per domain; the lock also proves that a previous router
	// whose segments we may adopt is dead (server_lock.go).
	if s.lock, err = lockDomain(cfg, s.path, os.FileMode(cfg.SocketDirMode)); err != nil {
		return nil, err
	}
	if s.idents, err = openIdentityFile(cfg); err != nil {
		return nil, err
	}
	if s.idMarks, err = openIDMarks(cfg); err != nil {
		return nil, err
	}
	// Every segment is a publisher's or a connection's
	// (server_segments.go): nothing to create here. Clients own their
	// segments and hand them back when they resume (server_adopt.go); who
	// may resume comes from the identity file.
	ownedIDs := s.survivingClients()
	adopted := len(ownedIDs) > 0
	s.adopted = adopted
	rules := cfg.rules()
	s.core, err = core.NewRouter(core.RouterOptions{
		Rules:        &rules,
		Rand:         rand.Reader,
		Sizes:        ownedSegmentSizes(), // server_segments.go
		HelloTimeout: helloBackstopTicks(s.opts.TickInterval),
	})
	if err != nil {
		return nil, err
	}
	if err := s.startMonitor(); err != nil {
		return nil, err
	}
	if adopted {
		ids := make([]core.ClientID, len(ownedIDs))
		for i, in := range ownedIDs {
			ids[i] = in.Client
		}
		s.step(core.AdoptClients{IDs: ids, Identities: ownedIDs, Floor: s.idMarks.read()})
		s.log.Info("a previous router of this domain left live clients; waiting for them to resume",
			"clients", len(ids), "grace", s.resumeGrace().String())
	}
	return s, nil
}

func (s *Server) resumeGrace() time.Duration {
	if s.opts.ResumeGrace > 0 {
		return s.opts.ResumeGrace
	}
	return DefaultResumeGrace
}

// SocketPath returns the control socket path the server listens on.
func (s *Server) SocketPath() string { return s.path }

// Ready returns a channel closed once Serve listens and accepts clients.
func (s *Server) Ready() <-chan struct{} { return s.ready }

// Config returns the server's (validated) configuration.
func (s *Server) Config() *Config { return s.cfg }

// Snapshot returns a copy of the router's registry. It is safe to call from
// any goroutine while Serve runs; it fails with ctx's error if Serve does
// not answer in time.
func (s *Server) Snapshot(ctx context.Context) (Snapshot, error) {
	reply := make(chan core.Snapshot, 1)
	select {
	case s.events <- evSnapshot{reply: reply}:
	case <-ctx.Done():
		return Snapshot{}, ctx.Err()
	}
	select {
	case snap := <-reply:
		return publicSnapshot(snap), nil
	case <-ctx.Done():
		return Snapshot{}, ctx.Err()
	}
}

// Serve listens on the domain's socket and serves clients until ctx is
// done. A live router already serving the socket makes it fail with an
// error wrapping discovery.ErrRouterRunning; a stale socket left by a dead
// one is taken over. On return every client has been told (Shutdown), the
// connections are closed and the socket file removed; the segments stay
// until Close.
func (s *Server) Serve(ctx context.Context) error {
	err := errors.New("roudi: Serve called twice")
	s.serveOnce.Do(func() { err = s.serve(ctx) })
	return err
}

func (s *Server) serve(ctx context.Context) error {
	if s.closed.Load() {
		return fmt.Errorf("serve: %w", os.ErrClosed)
	}
	if err := s.makeSocketDir(); err != nil {
		return err
	}
	ln, err := discovery.Listen(s.path)
	if err != nil {
		return err
	}
	if err := s.chmodSocket(); err != nil {
		ln.Close()
		return err
	}
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	var wg sync.WaitGroup
	wg.Add(1)
	go func() { defer wg.Done(); s.acceptLoop(ctx, ln) }()
	s.log.Info("router ready", "domain", s.cfg.Domain, "socket", s.path, "pid", os.Getpid(),
		"model", string(s.cfg.Memory.Model), "monitor", s.MonitorKind())
	if s.opts.Nice != 0 {
		if err := sys.ReniceProcess(s.opts.Nice); err != nil {
			s.log.Warn("cannot change the router's priority", "nice", s.opts.Nice, "err", err)
		}
	}
	s.resumeAt = time.Now().Add(s.resumeGrace())
	close(s.ready)

	s.startClock(time.Now())
	defer s.clock.timer.Stop()
loop:
	for {
		s.armClock(time.Now())
		// Exits first: a dead client's chunks go back to the pools before
		// the next request is served (select alone picks at random).
		select {
		case ex := <-s.monitorEvents():
			s.advanceClock(time.Now())
			s.processExited(ex)
			continue
		default:
		}
		select {
		case <-ctx.Done():
			break loop
		case now := <-s.clockC():
			s.clockFired(now)
		case ev := <-s.events:
			s.advanceClock(time.Now())
			s.handle(ev)
		case ex := <-s.monitorEvents():
			s.advanceClock(time.Now())
			s.processExited(ex)
		}
	}
	ln.Close()
	// Queued, not written here: a client that does not read cannot delay
	// the others; each connection closes once flushed (bounded by
	// sendTimeout, all in parallel).
	for _, c := range s.conns {
		_ = c.sc.Push(&wire.Shutdown{Reason: "router shutting down"}, nil)
		c.sc.CloseWhenFlushed()
	}
	// Drain events until every connection goroutine (and its writer) has
	// exited.
	done := make(chan struct{})
	go func() { wg.Wait(); close(done) }()
	for {
		select {
		case ev := <-s.events:
			if a, ok := ev.(evAccepted); ok {
				a.sc.Close()
			}
		case <-done:
			s.conns = map[core.ConnID]*serverConn{}
			s.log.Info("router stopped", "domain", s.cfg.Domain)
			return nil
		}
	}
}

// Close stops a router made by [Start] (as cancelling its context does) and
// waits until it stopped serving; then it releases the segments and
// read-only fds. For a server made by [New], call it after Serve has
// returned. It is idempotent and returns the error Serve returned, if any,
// joined with those of releasing.
func (s *Server) Close() error {
	if !s.closed.CompareAndSwap(false, true) {
		return nil
	}
	errs := []error{s.stopServing()}
	errs = append(errs, s.closeSegments())
	errs = append(errs, s.closeMonitor())
	errs = append(errs, s.idents.Close())
	errs = append(errs, s.idMarks.Close())
	errs = append(errs, s.lock.Close()) // last: the segments are gone
	return errors.Join(errs...)
}

func (s *Server) acceptLoop(ctx context.Context, ln *net.UnixListener) {
	var wg sync.WaitGroup
	defer wg.Wait()
	for {
		uc, err := ln.AcceptUnix()
		if err != nil {
			if ctx.Err() == nil && !errors.Is(err, net.ErrClosed) {
				s.log.Error("accept", "err", err)
			}
			return
		}
		sc, err := discovery.NewServerConn(uc)
		if err != nil {
			s.log.Warn("reject connection", "err", err)
			continue
		}
		sc.StartWriter(s.queueOptions(sc)) // server_outq.go
		c := &serverConn{sc: sc, done: make(chan struct{})}
		select {
		case s.events <- evAccepted{c: c, sc: sc}:
		case <-ctx.Done():
			sc.Close()
			return
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			s.readLoop(ctx, c)
			if ctx.Err() == nil {
				// The read side ended (departure, cut, protocol error):
				// write what is queued, then close. On shutdown Serve
				// queues the Shutdown push first and closes.
				c.sc.CloseWhenFlushed()
			}
			<-c.sc.Done() // the writer's exit
		}()
	}
}

// helloTimeout is how long an accepted connection has to send its Hello:
// readLoop's deadline on reading it, so judged when the Hello arrives.
const helloTimeout = 5 * time.Second

// helloBackstopTicks is the core's handshake deadline, in ticks of
// interval: twice helloTimeout, so that it never closes a connection whose
// Hello readLoop read in time. The core judges its deadline when the Serve
// goroutine steps the Hello, which can be long after the Hello arrived (a
// loaded machine, a GC pause): at the core's default of 50 ticks (500 ms)
// clients that had sent their Hello at once were closed without a reply.
// It only backs readLoop's deadline up.
func helloBackstopTicks(interval time.Duration) int {
	return int(2 * helloTimeout / interval)
}

// readLoop reads one client's messages and forwards them to the Serve
// goroutine. It owns nothing but the read side of the connection.
func (s *Server) readLoop(ctx context.Context, c *serverConn) {
	send := func(ev event) bool {
		select {
		case s.events <- ev:
			return true
		case <-ctx.Done():
			return false
		}
	}
	hctx, cancel := context.WithTimeout(ctx, helloTimeout)
	reqID, hello, err := c.sc.ReadHello(hctx)
	cancel()
	if err != nil {
		send(evGone{c: c, err: fmt.Errorf("handshake: %w", err)})
		return
	}
	if !send(evHello{c: c, reqID: reqID, hello: hello}) {
		return
	}
	for {
		env, files, err := c.sc.ReadRequest()
		if err != nil {
			send(evGone{c: c, err: err})
			return
		}
		if drop, stop := s.admitRequest(c, env, files); stop {
			send(evGone{c: c, err: ErrFlooding})
			return
		} else if drop {
			continue
		}
		if !send(evRequest{c: c, env: env, files: files}) {
			closeFiles(files)
			return
		}
	}
}

func closeFiles(fs []*os.File) {
	for _, f := range fs {
		f.Close()
	}
}
