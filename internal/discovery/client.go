package discovery

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/parallax-ipc/parallax"
	"github.com/parallax-ipc/parallax/internal/testhook"
	"github.com/parallax-ipc/parallax/internal/wire"
)

// DialOptions configures [Dial]. The zero value dials the
// default domain's router.
type DialOptions struct {
	// Socket is the router's socket path; "" means SocketPath(Domain).
	Socket string
	// Domain names the router instance; "" means DefaultDomain().
	Domain string
	// Name is this process's name as the router shows it; "" means the
	// base name of os.Args[0].
	Name string

	// protocol version range sent in Hello; 0 means wire.Version /
	// wire.MinVersion (tests override them).
	version, minVersion uint16
}

// PushHandler receives a router-initiated message (wire.ConnectionAdded,
// wire.ConnectionRemoved, wire.SegmentGrant, wire.Shutdown) with its fds.
// The handler may keep a file by setting its slice element to nil; the
// client closes every file still in the slice after all handlers returned.
type PushHandler func(m wire.Message, files []*os.File)

// Client is a process's control connection to the router: it performs the
// handshake, then matches replies to [Client.Request] calls by request id
// and hands pushes to the handlers registered with [Client.OnPush].
//
// Use [Dial]; the zero value is invalid. A Client must not be
// copied; all methods are safe for concurrent use. It owns two goroutines
// (a socket reader and a push dispatcher) that exit on Close or when the
// router goes away. Close closes the socket and the management segment fd,
// and fails pending requests with an error wrapping os.ErrClosed.
type Client struct {
	conn    *Conn
	path    string
	domain  string
	welcome wire.Welcome

	nextID atomic.Uint32

	mu      sync.Mutex // guards the fields below
	pending map[uint32]chan reply
	// undo holds the undo functions of requests whose WaitUndo gave up
	// before their reply came (see Call.WaitUndo), by request id.
	undo     map[uint32]abandoned
	handlers []handlerEntry
	nextH    int
	pushQ    []reply
	err      error // terminal error, set once before done is closed
	// pushed counts pushes queued by the reader, handled those the
	// dispatcher finished; handledCh is closed (and replaced) whenever
	// handled advances. Barrier waits on them.
	pushed, handled uint64
	handledCh       chan struct{}

	pushSig   chan struct{} // buffered(1): pushQ is non-empty
	done      chan struct{} // closed when the client is failed or closed
	readerOut chan struct{} // closed when the reader goroutine exited
	wg        sync.WaitGroup
	closeOnce sync.Once
}

type reply struct {
	env   wire.Envelope
	files []*os.File
}

type handlerEntry struct {
	id int
	fn PushHandler
}

// daemonUnavailable builds the error returned when nothing listens at path.
func daemonUnavailable(path, domain string, err error) error {
	return fmt.Errorf("no router at %s (start one with: parallax-roudi -domain %s): %w: %w", path, domain, parallax.ErrDaemonUnavailable, err)
}

// Dial connects to the router and performs the version handshake. If no
// router listens, the error wraps parallax.ErrDaemonUnavailable and tells
// how to start one; on a version mismatch it wraps
// parallax.ErrProtocolVersion and names both sides' versions. ctx bounds
// the connect and the handshake.
func Dial(ctx context.Context, opts DialOptions) (c *Client, err error) {
	domain, path, err := resolve(opts)
	if err != nil {
		return nil, err
	}
	var d net.Dialer
	nc, err := d.DialContext(ctx, "unixpacket", path)
	if err != nil {
		return nil, daemonUnavailable(path, domain, err)
	}
	conn := NewConn(nc.(*net.UnixConn))
	defer func() {
		if err != nil {
			conn.Close()
		}
	}()
	welcome, err := handshake(ctx, conn, path, opts)
	if err != nil {
		return nil, err
	}
	c = &Client{
		conn:      conn,
		path:      path,
		domain:    domain,
		welcome:   *welcome,
		pending:   make(map[uint32]chan reply),
		undo:      make(map[uint32]abandoned),
		pushSig:   make(chan struct{}, 1),
		done:      make(chan struct{}),
		readerOut: make(chan struct{}),
	}
	c.nextID.Store(1) // id 1 was the Hello
	c.wg.Add(2)
	go c.readLoop()
	go c.pushLoop()
	return c, nil
}

func resolve(opts DialOptions) (domain, path string, err error) {
	domain = opts.Domain
	if domain == "" {
		if domain, err = DefaultDomain(); err != nil {
			return "", "", err
		}
	}
	path = opts.Socket
	if path == "" {
		if path, err = SocketPath(domain); err != nil {
			return "", "", err
		}
	}
	return domain, path, nil
}

func handshake(ctx context.Context, conn *Conn, path string, opts DialOptions) (*wire.Welcome, error) {
	maxV, minV := opts.version, opts.minVersion
	if maxV == 0 {
		maxV, minV = wire.Version, wire.MinVersion
	}
	name := opts.Name
	if name == "" {
		name = filepath.Base(os.Args[0])
	}
	if len(name) > wire.MaxNameLen {
		name = name[:wire.MaxNameLen]
	}
	hello := &wire.Hello{Version: maxV, MinVersion: minV, PID: int32(os.Getpid()), Name: name}
	if err := conn.Send(1, hello, nil); err != nil {
		return nil, fmt.Errorf("handshake with router at %s: %w: %w", path, parallax.ErrDaemonUnavailable, err)
	}
	env, files, err := recvCtx(ctx, conn)
	if err != nil {
		if ctx.Err() != nil {
			return nil, fmt.Errorf("handshake with router at %s: %w", path, ctx.Err())
		}
		if errors.Is(err, parallax.ErrProtocol) {
			return nil, fmt.Errorf("handshake with router at %s: %w", path, err)
		}
		return nil, fmt.Errorf("handshake with router at %s: %w: %w", path, parallax.ErrDaemonUnavailable, err)
	}
	closeFiles(files) // none: Conn.Recv checks wire.ExpectedFDs
	switch m := env.Msg.(type) {
	case *wire.Welcome:
		if env.ReqID != 1 {
			return nil, fmt.Errorf("handshake with router at %s: Welcome for request %d, want 1: %w", path, env.ReqID, parallax.ErrProtocol)
		}
		if m.Version < minV || m.Version > maxV {
			return nil, fmt.Errorf("handshake with router at %s: router chose protocol version %d, client speaks %d..%d: %w", path, m.Version, minV, maxV, parallax.ErrProtocolVersion)
		}
		return m, nil
	case *wire.Error:
		return nil, fmt.Errorf("handshake with router at %s (client speaks protocol version %d..%d): %w", path, minV, maxV, m.Err())
	default:
		return nil, fmt.Errorf("handshake with router at %s: got %s, want Welcome: %w", path, env.Type(), parallax.ErrProtocol)
	}
}

// recvCtx receives one message, giving up when ctx is done.
func recvCtx(ctx context.Context, conn *Conn) (wire.Envelope, []*os.File, error) {
	uc := conn.UnixConn()
	if dl, ok := ctx.Deadline(); ok {
		_ = uc.SetReadDeadline(dl)
	}
	fired := make(chan struct{})
	stop := context.AfterFunc(ctx, func() {
		_ = uc.SetReadDeadline(time.Unix(1, 0))
		close(fired)
	})
	env, files, err := conn.Recv()
	if !stop() {
		<-fired // the past deadline it set must not outlive this call
	}
	_ = uc.SetReadDeadline(time.Time{})
	return env, files, err
}

// Welcome returns the router's answer to the handshake: negotiated
// version, client id, domain and resume token.
func (c *Client) Welcome() wire.Welcome { return c.welcome }

// Path returns the socket path c is connected to.
func (c *Client) Path() string { return c.path }

// Done returns a channel closed when c stops working: Close was called or
// the router went away. [Client.Err] then says why.
func (c *Client) Done() <-chan struct{} { return c.done }

// Err returns nil while c works, then the reason it stopped: an error
// wrapping os.ErrClosed after Close, or parallax.ErrDaemonUnavailable (or
// parallax.ErrProtocol) when the router went away or misbehaved.
func (c *Client) Err() error {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.err
}

// OnPush registers h for push messages and returns a function that
// unregisters it. Handlers run one message at a time, in arrival order, on
// the client's dispatch goroutine, so they may call Request but must not
// call Close (it waits for the dispatcher). Pushes that arrive while no
// handler is registered are dropped and their fds closed.
func (c *Client) OnPush(h PushHandler) (remove func()) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.nextH++
	id := c.nextH
	c.handlers = append(c.handlers, handlerEntry{id, h})
	return func() {
		c.mu.Lock()
		defer c.mu.Unlock()
		for i, e := range c.handlers {
			if e.id == id {
				c.handlers = append(c.handlers[:i:i], c.handlers[i+1:]...)
				return
			}
		}
	}
}

// Request sends m with files attached (owned by the caller) and waits for
// the reply, until ctx is done or c stops. It returns the reply message and
// its fds, which the caller then owns. A router-side failure (a wire.Error
// reply) is returned as an error wrapping a *wire.RemoteError, so errors.Is
// matches the router's sentinel (parallax.ErrTopicNotFound, ...).
func (c *Client) Request(ctx context.Context, m wire.Message, files []*os.File) (wire.Message, []*os.File, error) {
	call, err := c.Start(m, files)
	if err != nil {
		return nil, nil, err
	}
	return call.Wait(ctx)
}

// A Call is a request sent by [Client.Start] whose reply [Call.Wait]
// reads. Wait must be called exactly once.
type Call struct {
	c    *Client
	id   uint32
	ch   chan reply
	typ  wire.Type // of the request
	want wire.Type // of the reply
}

// Start sends m with files attached (owned by the caller) and returns once
// it is written, without waiting for the reply: requests started one
// after another from one goroutine reach the router in that order, and
// the router serves one client's requests in order, so a caller can
// pipeline several and then wait for each ([Call.Wait]).
func (c *Client) Start(m wire.Message, files []*os.File) (*Call, error) {
	if m == nil {
		return nil, fmt.Errorf("request nil message: %w", wire.ErrInvalidArgument)
	}
	want, ok := wire.ReplyType(m.MessageType())
	if !ok || m.MessageType() == wire.TypeHello {
		return nil, fmt.Errorf("request %s: not a request message: %w", m.MessageType(), wire.ErrInvalidArgument)
	}
	id := c.nextID.Add(1)
	if id == 0 {
		id = c.nextID.Add(1)
	}
	ch := make(chan reply, 1)
	c.mu.Lock()
	if c.err != nil {
		err := c.err
		c.mu.Unlock()
		return nil, fmt.Errorf("request %s: %w", m.MessageType(), err)
	}
	c.pending[id] = ch
	c.mu.Unlock()

	if err := c.conn.Send(id, m, files); err != nil {
		c.forget(id, ch)
		if errors.Is(err, syscall.EPIPE) || errors.Is(err, syscall.ECONNRESET) {
			// The router hung up; the reader may not have seen its EOF
			// yet (it reads what the router sent first). Fail the client
			// now, so that whoever checks Err or waits on Done (the
			// process's runtime registry, the reconnector) sees a dead
			// connection rather than sending into it again.
			c.fail(fmt.Errorf("router at %s went away: %w: %w", c.path, parallax.ErrDaemonUnavailable, err))
		}
		if cerr := c.Err(); cerr != nil {
			return nil, fmt.Errorf("request %s: %w", m.MessageType(), cerr)
		}
		return nil, fmt.Errorf("request %s: %w", m.MessageType(), err)
	}
	return &Call{c: c, id: id, ch: ch, typ: m.MessageType(), want: want}, nil
}

// Wait waits for the reply of the started request, until ctx is done or
// the client stops, and returns it as [Client.Request] does.
func (call *Call) Wait(ctx context.Context) (wire.Message, []*os.File, error) {
	return call.wait(ctx, nil)
}

// wait is Wait, and WaitUndo with undo set.
func (call *Call) wait(ctx context.Context, undo UndoFunc) (wire.Message, []*os.File, error) {
	c := call.c
	var r reply
	select {
	case r = <-call.ch:
	case <-ctx.Done():
		err := fmt.Errorf("request %s: %w", call.typ, ctx.Err())
		if undo != nil {
			c.abandon(call, undo)
			return nil, nil, gaveUpError{err}
		}
		c.forget(call.id, call.ch)
		return nil, nil, err
	case <-c.done:
		if !c.lateReply(ctx, call, &r) {
			c.forget(call.id, call.ch)
			return nil, nil, fmt.Errorf("request %s: %w", call.typ, c.Err())
		}
	}
	switch rm := r.env.Msg.(type) {
	case *wire.Error:
		closeFiles(r.files)
		return nil, nil, fmt.Errorf("request %s: %w", call.typ, rm.Err())
	}
	if r.env.Type() != call.want {
		closeFiles(r.files)
		return nil, nil, fmt.Errorf("request %s: router replied %s, want %s: %w", call.typ, r.env.Type(), call.want, parallax.ErrProtocol)
	}
	return r.env.Msg, r.files, nil
}

// An UndoFunc takes back what a request did at the router when the
// caller stopped waiting for its reply. It is called once, on a goroutine
// of its own (so it may send requests), with the client the request went
// to and either the reply (a reply of the request's type, never an
// error), whose files it owns, or a nil m when there is nothing to undo:
// the router refused the request, or the connection ended before the
// reply (the router frees with a connection everything created over it).
type UndoFunc func(c *Client, m wire.Message, files []*os.File)

// WaitUndo is Wait for a request that creates something at the router
// (an endpoint, a segment): when ctx ends before the reply, the reply is
// still awaited in the background and undo takes back what the router
// did. Without it the router would keep, for as long as this connection
// lives, what nobody in this process knows of. WaitUndo gave up (and undo
// is called, once, meanwhile or later) exactly when its error satisfies
// [GaveUp]; otherwise undo is never called.
func (call *Call) WaitUndo(ctx context.Context, undo UndoFunc) (wire.Message, []*os.File, error) {
	return call.wait(ctx, undo)
}

// gaveUpError is the error of a WaitUndo that gave up.
type gaveUpError struct{ err error }

func (e gaveUpError) Error() string { return e.err.Error() }
func (e gaveUpError) Unwrap() error { return e.err }

// GaveUp reports whether err is that of a [Call.WaitUndo] that gave up
// waiting (its ctx ended), leaving the reply to its undo function.
func GaveUp(err error) bool {
	var g gaveUpError
	return errors.As(err, &g)
}

// abandoned is a request whose caller stopped waiting: the reply of type
// want goes to undo.
type abandoned struct {
	undo UndoFunc
	want wire.Type
}

// abandon hands call's reply to undo once it comes (at once if it came
// already): its caller stopped waiting.
func (c *Client) abandon(call *Call, undo UndoFunc) {
	a := abandoned{undo, call.want}
	c.mu.Lock()
	if _, waiting := c.pending[call.id]; waiting {
		if c.err == nil {
			c.undo[call.id] = a // the reader hands it over, or drops it at its exit
			c.mu.Unlock()
			return
		}
		delete(c.pending, call.id)
		c.mu.Unlock()
		// The reader may still hand the reply over (lateReply), but the
		// connection is gone, and the router with it frees what it made.
		go undo(c, nil, nil)
		return
	}
	c.mu.Unlock()
	select {
	case r := <-call.ch:
		late(c, a, r)
	default:
		go undo(c, nil, nil)
	}
}

// late hands reply r of an abandoned request a to its undo on a
// goroutine of its own; a refusal (an error reply) leaves nothing to
// undo.
func late(c *Client, a abandoned, r reply) {
	if r.env.Type() != a.want {
		closeFiles(r.files)
		go a.undo(c, nil, nil)
		return
	}
	go a.undo(c, r.env.Msg, r.files)
}

// dropAbandoned tells the undo functions of the requests still waiting
// for their reply that none will come: the reader is out.
func (c *Client) dropAbandoned() {
	c.mu.Lock()
	undo := c.undo
	c.undo = map[uint32]abandoned{}
	for id := range undo {
		delete(c.pending, id)
	}
	c.mu.Unlock()
	for _, a := range undo {
		go a.undo(c, nil, nil)
	}
}

// readerDrainWait bounds how long a request whose client failed waits for
// the reader to reach the end of what the router sent.
const readerDrainWait = 100 * time.Millisecond

// lateReply reports whether call's reply still arrives although c failed,
// storing it in *r. A client fails on another goroutine's send that found
// the router gone (Start) possibly before the reader read the rest of what
// the router sent, this reply included: it waits until the reader is out
// (at the router's EOF, or after Close), for readerDrainWait at most and
// not past ctx.
func (c *Client) lateReply(ctx context.Context, call *Call, r *reply) bool {
	select {
	case *r = <-call.ch:
		return true
	default:
	}
	t := time.NewTimer(readerDrainWait)
	defer t.Stop()
	select {
	case *r = <-call.ch:
		return true
	case <-c.readerOut:
		select {
		case *r = <-call.ch:
			return true
		default:
		}
	case <-ctx.Done():
	case <-t.C:
	}
	return false
}

// forget unregisters a request nobody waits for any more. The reader hands
// replies over under c.mu, so if the entry is already gone the reply sits
// in ch: close its fds.
func (c *Client) forget(id uint32, ch chan reply) {
	c.mu.Lock()
	_, ok := c.pending[id]
	delete(c.pending, id)
	c.mu.Unlock()
	if ok {
		return
	}
	select {
	case r := <-ch:
		closeFiles(r.files)
	default:
	}
}

// readLoop is the only reader of the socket. It exits when Recv fails.
func (c *Client) readLoop() {
	defer c.wg.Done()
	defer close(c.readerOut)
	defer c.dropAbandoned() // after fail: a later abandon sees c.err
	for {
		env, files, err := c.conn.Recv()
		if err != nil {
			switch {
			case errors.Is(err, os.ErrClosed), errors.Is(err, net.ErrClosed):
				c.fail(fmt.Errorf("client of router at %s closed: %w", c.path, os.ErrClosed))
			case errors.Is(err, parallax.ErrProtocol):
				c.fail(fmt.Errorf("read from router at %s: %w", c.path, err))
			default:
				// Pause window: the router hung up, this process has not
				// noticed yet (a send into the connection fails first).
				testhook.Pause("control.eof")
				c.fail(fmt.Errorf("router at %s went away: %w: %w", c.path, parallax.ErrDaemonUnavailable, err))
			}
			return
		}
		if env.Type().IsPush() && env.ReqID == 0 { // a push type with an id answers a request
			c.mu.Lock()
			c.pushQ = append(c.pushQ, reply{env, files})
			c.pushed++
			c.mu.Unlock()
			select {
			case c.pushSig <- struct{}{}:
			default:
			}
			continue
		}
		c.mu.Lock()
		ch, ok := c.pending[env.ReqID]
		delete(c.pending, env.ReqID)
		ab, gaveUp := c.undo[env.ReqID]
		delete(c.undo, env.ReqID)
		if ok && !gaveUp {
			ch <- reply{env, files} // buffered(1), one send per id: never blocks
		}
		c.mu.Unlock()
		switch {
		case gaveUp:
			late(c, ab, reply{env, files})
		case !ok:
			closeFiles(files) // late reply to a cancelled request
		}
	}
}

// Barrier waits until every push received before the call has been handed
// to the push handlers (and they returned). The router sends the pushes
// that concern a new endpoint (its connections) before its reply, so a
// Barrier after the reply means the endpoint is fully wired. It must not be
// called from a push handler.
func (c *Client) Barrier(ctx context.Context) error {
	c.mu.Lock()
	target := c.pushed
	c.mu.Unlock()
	for {
		c.mu.Lock()
		if c.handled >= target {
			c.mu.Unlock()
			return nil
		}
		if c.handledCh == nil {
			c.handledCh = make(chan struct{})
		}
		ch := c.handledCh
		c.mu.Unlock()
		select {
		case <-ch:
		case <-c.readerOut:
			// The reader is gone: the dispatcher drains what was queued and
			// exits; keep waiting for it unless the client is closed.
			select {
			case <-ch:
			case <-ctx.Done():
				return ctx.Err()
			}
		case <-ctx.Done():
			return ctx.Err()
		}
	}
}

// pushLoop delivers queued pushes to the handlers, in order. It drains the
// queue after the reader exits, then returns.
func (c *Client) pushLoop() {
	defer c.wg.Done()
	for {
		var readerGone bool
		select {
		case <-c.pushSig:
		case <-c.readerOut:
			readerGone = true
		}
		for {
			c.mu.Lock()
			if len(c.pushQ) == 0 {
				c.mu.Unlock()
				break
			}
			p := c.pushQ[0]
			c.pushQ[0] = reply{}
			c.pushQ = c.pushQ[1:]
			hs := append([]handlerEntry(nil), c.handlers...)
			c.mu.Unlock()
			for _, h := range hs {
				h.fn(p.env.Msg, p.files)
			}
			closeFiles(p.files)
			c.mu.Lock()
			c.handled++
			if c.handledCh != nil {
				close(c.handledCh)
				c.handledCh = nil
			}
			c.mu.Unlock()
		}
		if readerGone {
			return
		}
	}
}

// fail records the terminal error (first one wins) and wakes every waiter.
func (c *Client) fail(err error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.err != nil {
		return
	}
	c.err = err
	close(c.done)
}

// Close closes the connection and the management segment fd, fails pending
// requests with an error wrapping os.ErrClosed, delivers pushes already
// received, and waits for the client's goroutines. It is idempotent and
// must not be called from a push handler.
func (c *Client) Close() error {
	c.closeOnce.Do(func() {
		c.fail(fmt.Errorf("client of router at %s closed: %w", c.path, os.ErrClosed))
		c.conn.Close()
		c.wg.Wait()
	})
	return nil
}
