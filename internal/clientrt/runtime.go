package clientrt

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"sync"
	"syscall"
	"time"

	"github.com/parallax-ipc/parallax"
	"github.com/parallax-ipc/parallax/internal/discovery"
	"github.com/parallax-ipc/parallax/internal/sys"
	"github.com/parallax-ipc/parallax/internal/wire"
)

// Endpoint receives the pushes addressed to one local publisher or
// subscriber. Handlers run on the control client's dispatch goroutine, one
// at a time.
type Endpoint interface {
	ConnectionAdded(m *wire.ConnectionAdded)
	ConnectionRemoved(m *wire.ConnectionRemoved)
}

// ClosingEndpoint is a publisher endpoint of the owned model told that a
// subscriber closed one of its connections: deliver nothing more on it,
// keep taking returns until the router removes it.
type ClosingEndpoint interface {
	ConnectionClosing(m *wire.ConnectionClosing)
}

// SelfReleasingEndpoint is a subscriber endpoint of the owned model that
// releases some removed connections itself: an orphaned connection (its
// publisher is gone) is drained first, and released only once its segment
// is unmapped (design §4.1). After its ConnectionRemoved(m) ran,
// ReleasesItself(m) reports whether it took the release of m's connection
// over (it then sends ReleaseConnection itself, exactly once); the runtime
// releases it otherwise.
type SelfReleasingEndpoint interface {
	ReleasesItself(m *wire.ConnectionRemoved) bool
}

// Runtime is one process's connection to one router. Use [Acquire]; the
// zero value is invalid. It is safe for concurrent use. Each Acquire must
// be paired with one Release; the last Release closes the control
// connection and unmaps the segments.
type Runtime struct {
	key  string
	refs int // guarded by runtimes.mu

	client  *controlConn
	welcome wire.Welcome
	remove  func()

	mu       sync.Mutex
	pubs     map[uint32]Endpoint
	subs     map[uint32]Endpoint
	pending  []*pendingPush             // pushes for endpoints not registered yet
	inflight int                        // Create requests whose endpoint has not registered yet
	svc      map[uint64]ServicesHandler // services.go
	svcSeq   uint64

	rcl resumeCloses // closes that race a resume (resumeclose.go)
	// closedSubs records the pushes for closing subscribers after their
	// Unregister (closedsub.go).
	closedSubs map[uint32]*closedSub
	owned      ownedState  // the segments' mappings (owned.go)
	mem        memReporter // owned publishers' memory reports (memreport.go)
	rc         reconnector

	// releases counts the ReleaseConnection requests running aside;
	// teardown waits for them (each bounded by releaseTimeout) before it
	// closes the control connection, so that a release sent just before
	// the last Release reaches the router. Without it the router sees the
	// client leave first and keeps the connection closing until the
	// process exits (design §4.1). relMu guards tornDown and the Adds.
	relMu    sync.Mutex
	releases sync.WaitGroup
	tornDown bool
}

var runtimes struct {
	mu sync.Mutex
	m  map[string]*Runtime
}

// Options select the router.
type Options struct {
	Domain string // "" = $PARALLAX_DOMAIN or "default"
	Socket string // "" = derived from the domain ($PARALLAX_SOCKET overrides)
	Name   string // process name shown by the router; "" = program name
}

// Acquire returns this process's runtime for the router opts names,
// connecting on first use.
func Acquire(ctx context.Context, opts Options) (*Runtime, error) {
	dopts := discovery.DialOptions{Domain: opts.Domain, Socket: opts.Socket, Name: opts.Name}
	path := opts.Socket
	if path == "" {
		d := opts.Domain
		if d == "" {
			var err error
			if d, err = discovery.DefaultDomain(); err != nil {
				return nil, err
			}
		}
		var err error
		if path, err = discovery.SocketPath(d); err != nil {
			return nil, err
		}
	}
	runtimes.mu.Lock()
	defer runtimes.mu.Unlock()
	if rt := runtimes.m[path]; rt != nil {
		if rt.client.Err() == nil {
			rt.refs++
			return rt, nil
		}
		delete(runtimes.m, path) // router went away: a new runtime for new endpoints
	}
	dopts.Socket = path
	rt, err := open(ctx, path, dopts)
	if err != nil {
		return nil, err
	}
	rt.refs = 1
	if runtimes.m == nil {
		runtimes.m = make(map[string]*Runtime)
	}
	runtimes.m[path] = rt
	return rt, nil
}

func open(ctx context.Context, key string, dopts discovery.DialOptions) (_ *Runtime, err error) {
	sc, err := discovery.Dial(ctx, dopts)
	if err != nil {
		return nil, err
	}
	rt := &Runtime{key: key, client: newControlConn(sc), welcome: sc.Welcome(), pubs: map[uint32]Endpoint{}, subs: map[uint32]Endpoint{}}
	defer func() {
		if err != nil {
			rt.teardown()
		}
	}()
	// Every segment comes as a grant (owned.go).
	rt.remove = sc.OnPush(rt.onPush)
	rt.startReconnector(dopts)
	return rt, nil
}

// Release drops one reference; the last one disconnects and unmaps.
func (rt *Runtime) Release() {
	runtimes.mu.Lock()
	rt.refs--
	last := rt.refs == 0
	if last && runtimes.m[rt.key] == rt {
		delete(runtimes.m, rt.key)
	}
	runtimes.mu.Unlock()
	if last {
		rt.teardown()
	}
}

func (rt *Runtime) teardown() {
	rt.relMu.Lock()
	rt.tornDown = true
	rt.relMu.Unlock()
	rt.releases.Wait() // the releases sent before go out first
	rt.stopMemoryReports()
	rt.stopReconnector()
	if rt.remove != nil {
		rt.remove()
	}
	rt.client.Close()
	rt.mu.Lock()
	defer rt.mu.Unlock()
	rt.closeOwned()
}

// ClientID is this process's client id, the owner recorded on loans.
func (rt *Runtime) ClientID() uint16 { return rt.welcome.ClientID }

// Request sends a control request and waits for its reply.
func (rt *Runtime) Request(ctx context.Context, m wire.Message) (wire.Message, []*os.File, error) {
	return rt.client.Request(ctx, m, nil)
}

// Start sends request m without waiting for its reply; the caller waits
// with [discovery.Call.Wait]. Requests started one after another from one
// goroutine are served by the router in that order (see
// discovery.Client.Start) as long as they go over one control connection:
// a resume with a restarted router between two of them sends the later
// ones to the new router, while the earlier ones fail with the old
// connection (IsClosed).
func (rt *Runtime) Start(m wire.Message) (*discovery.Call, error) { return rt.client.Start(m) }

// Barrier waits until the pushes received so far were routed to their
// endpoints (see discovery.Client.Barrier).
func (rt *Runtime) Barrier(ctx context.Context) error { return rt.client.Barrier(ctx) }

// Done is closed when the control connection stops.
func (rt *Runtime) Done() <-chan struct{} { return rt.client.Done() }

func closeAll(fs []*os.File) {
	for _, f := range fs {
		if f != nil {
			f.Close()
		}
	}
}

// BeginCreate announces a Create request: until the matching EndCreate,
// pushes for endpoints not yet registered are held (the router pushes a
// new endpoint's connections right after its reply, possibly before the
// endpoint registers).
func (rt *Runtime) BeginCreate() {
	rt.mu.Lock()
	rt.inflight++
	rt.mu.Unlock()
}

// EndCreate ends what BeginCreate started, after the endpoint registered
// (or its request failed). With no Create in flight, held pushes can only
// concern endpoints of other processes, so they are dropped, and a data
// segment no local publisher claimed is unmapped.
func (rt *Runtime) EndCreate() {
	rt.mu.Lock()
	rt.inflight--
	var release []wire.Message
	if rt.inflight == 0 {
		for _, pp := range rt.pending {
			if pp.routing {
				pp.dropped = true // route releases it once delivered
				continue
			}
			release = append(release, pp.msg)
		}
		rt.pending = nil
		rt.unmapUnclaimed() // owned.go
	}
	rt.mu.Unlock()
	// The endpoints these were held for will not register: whatever of
	// this process had to let go of the rings has.
	for _, m := range release {
		rt.released(m)
	}
}

// RegisterPublisher routes pushes for pub to ep and replays the ones that
// arrived before it registered.
func (rt *Runtime) RegisterPublisher(id uint32, ep Endpoint) { rt.register(rt.pubs, id, ep, true) }

// RegisterSubscriber is RegisterPublisher for subscribers.
func (rt *Runtime) RegisterSubscriber(id uint32, ep Endpoint) { rt.register(rt.subs, id, ep, false) }

// Unregister removes a local endpoint.
func (rt *Runtime) Unregister(pub bool, id uint32) {
	rt.mu.Lock()
	defer rt.mu.Unlock()
	if pub {
		delete(rt.pubs, id)
	} else {
		delete(rt.subs, id)
		rt.unregisteredSub(id) // closedsub.go
	}
	rt.unregistered(pub, id) // resumeclose.go
}

func (rt *Runtime) register(m map[uint32]Endpoint, id uint32, ep Endpoint, pub bool) {
	rt.mu.Lock()
	m[id] = ep
	var replay []wire.Message
	// A push may concern two local endpoints (both ends of a connection in
	// this process) that register at different times: deliver it to this
	// one and keep it for the other.
	done := rt.takePending(pub, id, func(msg wire.Message) {
		replay = append(replay, msg)
		if g, ok := msg.(*connGrant); ok {
			rt.holdSide(g, pub) // the replay runs unlocked, as in route
		}
	})
	rt.mu.Unlock()
	if _, ok := ep.(MemoryReporter); ok && pub {
		rt.startMemoryReports()
	}
	for _, msg := range replay {
		rt.deliver(ep, msg, pub)
	}
	for _, msg := range done {
		rt.released(msg)
	}
}

// abandonEndpoint takes the pushes held for the publisher (pub) or
// subscriber id whose Create was given up (undoCreate): it never
// registers. A subscriber is recorded as closing, with the connections
// its held pushes named (closedsub.go); pushes for it that come later are
// recorded as they come.
func (rt *Runtime) abandonEndpoint(pub bool, id uint32) {
	rt.mu.Lock()
	if !pub {
		rt.unregisteredSub(id)
	}
	done := rt.takePending(pub, id, func(msg wire.Message) {
		if !pub {
			rt.closedPush(msg)
		}
	})
	rt.mu.Unlock()
	for _, msg := range done {
		rt.released(msg)
	}
}

// takePending hands take each held push for the publisher (pub) or
// subscriber id, which no longer waits for it, and returns the held
// pushes no local endpoint waits for any more, for the caller to release
// once it has unlocked mu. mu held.
func (rt *Runtime) takePending(pub bool, id uint32, take func(wire.Message)) (done []wire.Message) {
	keep := rt.pending[:0]
	for _, pp := range rt.pending {
		need := &pp.needSub
		if pub {
			need = &pp.needPub
		}
		if *need && target(pp.msg, pub) == id {
			take(pp.msg)
			*need = false
		}
		switch {
		case pp.needPub || pp.needSub:
			keep = append(keep, pp)
		case pp.routing:
			pp.dropped = true // route releases it once delivered
		default:
			done = append(done, pp.msg)
		}
	}
	clear(rt.pending[len(keep):])
	rt.pending = keep
	return done
}

// target returns the endpoint id a push names on the publisher (pub) or
// subscriber side.
func target(m wire.Message, pub bool) uint32 {
	switch m := m.(type) {
	case *wire.ConnectionAdded:
		if pub {
			return m.PubID
		}
		return m.SubID
	case *wire.ConnectionRemoved:
		if pub {
			return m.PubID
		}
		return m.SubID
	case *connGrant:
		if pub {
			return m.Seg.PubID
		}
		return m.Seg.SubID
	case *wire.ConnectionClosing: // the publisher side's only
		if pub {
			return m.PubID
		}
	}
	return 0
}

// deliver hands m to ep, the publisher (pub) or subscriber side.
func (rt *Runtime) deliver(ep Endpoint, m wire.Message, pub bool) {
	switch m := m.(type) {
	case *wire.ConnectionAdded:
		ep.ConnectionAdded(m)
	case *wire.ConnectionRemoved:
		ep.ConnectionRemoved(m)
	case *connGrant:
		rt.deliverConnSeg(ep, m, pub)
	case *wire.ConnectionClosing:
		if c, ok := ep.(ClosingEndpoint); ok && pub {
			c.ConnectionClosing(m)
		}
	}
}

// routeClosing delivers a ConnectionClosing to its publisher, or holds it,
// after the connection's earlier pushes, while the publisher's Create is
// in flight: dropped, the publisher would attach the connection (its
// grant replayed) and deliver to a subscriber that closed.
func (rt *Runtime) routeClosing(m *wire.ConnectionClosing) {
	rt.mu.Lock()
	ep := rt.pubs[m.PubID]
	if ep == nil && rt.inflight > 0 && len(rt.pending) < maxPending {
		rt.pending = append(rt.pending, &pendingPush{msg: m, needPub: true})
		rt.mu.Unlock()
		return
	}
	rt.mu.Unlock()
	if ep != nil {
		rt.deliver(ep, m, true)
	}
}

// pendingPush is a push held for the local endpoints it names that have
// not registered yet.
type pendingPush struct {
	msg              wire.Message
	needPub, needSub bool
	// routing: route is still delivering msg to the endpoint registered
	// when it held it. Until it is done msg must not be released (a
	// connGrant's release drops the reference that keeps the publisher's
	// read-only table, which the delivery then attaches to a table no
	// longer in the runtime; a ConnectionRemoved's tells the router the
	// ring is let go of before that endpoint stopped touching it).
	// dropped: register or EndCreate took it out of pending meanwhile;
	// route releases it.
	routing, dropped bool
}

// maxPending bounds the pushes held for endpoints that never register.
const maxPending = 4096

func (rt *Runtime) onPush(m wire.Message, files []*os.File) {
	switch m := m.(type) {
	case *wire.DataSegmentAdded, *wire.ConnSegmentAdded:
		// The push's fds are closed when the handlers return: keep a dup.
		var f *os.File
		if len(files) == 1 {
			var err error
			if f, err = sys.DupFile(files[0]); err != nil {
				slog.Warn("parallax: cannot keep a granted segment", "msg", m.MessageType(), "err", err)
			}
		}
		closeAll(files)
		if f == nil {
			return
		}
		if d, ok := m.(*wire.DataSegmentAdded); ok {
			rt.onDataSegment(d, f) // owned.go
		} else if g := rt.onConnSegment(m.(*wire.ConnSegmentAdded), f); g != nil {
			rt.route(g)
		}
		return
	case *wire.DataSegmentRetired:
		closeAll(files)
		rt.onDataRetired(m.PubID, m.Index) // owned_grow.go
		return
	case *wire.ConnectionClosing:
		closeAll(files)
		rt.routeClosing(m)
		return
	case *wire.ServiceUpdate, *wire.ServicesSynced:
		rt.onServices(m, files) // services.go
		return
	case *wire.ConnectionAdded, *wire.ConnectionRemoved:
	default:
		closeAll(files) // Shutdown: not handled here
		return
	}
	closeAll(files)
	rt.route(m)
}

// route delivers a connection push to the local endpoints it names, or
// holds it for those not registered yet while a Create is in flight.
func (rt *Runtime) route(m wire.Message) {
	rt.mu.Lock()
	// A connection between two endpoints of this process is pushed once
	// and concerns both.
	pubEP, subEP := rt.pubs[target(m, true)], rt.subs[target(m, false)]
	held := (pubEP == nil || subEP == nil) && rt.inflight > 0 && len(rt.pending) < maxPending
	var pp *pendingPush
	if held {
		pp = &pendingPush{msg: m, needPub: pubEP == nil, needSub: subEP == nil, routing: true}
		rt.pending = append(rt.pending, pp)
	}
	var closedNow uint32
	if subEP == nil {
		// A subscriber that is closing: its Close releases the
		// connection (closedsub.go).
		closedNow = rt.closedPush(m)
	}
	if g, ok := m.(*connGrant); ok {
		// The deliveries below run unlocked: an EndCreate may release the
		// held grant meanwhile, so each side holds its own reference.
		if subEP != nil {
			rt.holdSide(g, false) // owned.go
		}
		if pubEP != nil {
			rt.holdSide(g, true)
		}
	}
	rt.mu.Unlock()
	if subEP != nil {
		rt.deliver(subEP, m, false)
	}
	if pubEP != nil {
		rt.deliver(pubEP, m, true)
	}
	if closedNow != 0 {
		rt.ReleaseConnection(closedNow)
	}
	release := !held
	if held {
		// The other endpoint may have registered (or the Create ended)
		// while this one was delivered: then it is released here, after
		// both deliveries, not by register or EndCreate before this one.
		rt.mu.Lock()
		pp.routing = false
		release = pp.dropped
		rt.mu.Unlock()
	}
	if release {
		rt.released(m)
	}
}

// released tells the router that this process let go of the ring of a
// connection whose removal m announced, once every endpoint of this
// process it concerned has processed it (endpoints stop touching a ring
// before their ConnectionRemoved returns). The router frees the ring when
// every side told has released it. The request runs aside: the reader
// goroutine, which calls this, is the one that reads its answer (after
// teardown it fails at once on the closed connection).
func (rt *Runtime) released(m wire.Message) {
	if g, ok := m.(*connGrant); ok {
		rt.releaseGrant(g) // owned.go
		return
	}
	if rm, ok := m.(*wire.ConnectionRemoved); ok {
		rt.mu.Lock()
		ep := rt.subs[rm.SubID]
		rt.mu.Unlock()
		if s, ok := ep.(SelfReleasingEndpoint); ok && s.ReleasesItself(rm) {
			return
		}
		rt.ReleaseConnection(rm.ConnID)
	}
}

// ReleaseConnection tells the router, aside, that this process let go of
// connection id: after its removal, or (owned model) when a closed
// subscriber holds nothing of it any more, which ends the connection's
// closing state. The request runs on its own goroutine: the caller may be
// the reader goroutine, which reads its answer (after teardown it fails at
// once on the closed connection). The last Release of the runtime waits
// for the releases in flight before it disconnects.
func (rt *Runtime) ReleaseConnection(id uint32) {
	rt.relMu.Lock()
	if rt.tornDown {
		// Torn down: the router learns from the disconnect.
		rt.relMu.Unlock()
		return
	}
	rt.releases.Add(1)
	rt.relMu.Unlock()
	go func() {
		defer rt.releases.Done()
		_ = rt.ReleaseConnectionWait(id)
	}()
}

// ReleaseConnectionWait is ReleaseConnection on the caller's goroutine: it
// returns once the router answered, the request failed or releaseTimeout
// passed. It must not run on the reader goroutine (which reads the
// answer). A router that is gone frees the connection (or adopts it)
// itself, so a closed control connection is not an error.
func (rt *Runtime) ReleaseConnectionWait(id uint32) error {
	ctx, cancel := context.WithTimeout(context.Background(), releaseTimeout)
	defer cancel()
	_, _, err := rt.Request(ctx, &wire.ReleaseConnection{ConnID: id})
	if err != nil && !IsClosed(err) {
		return fmt.Errorf("release connection %d: %w", id, err)
	}
	return nil
}

// StartReleases sends a ReleaseConnection request for each of ids, after
// whatever this goroutine started before (the router serves them in
// order, see [Runtime.Start]), and returns the function that waits for
// their answers, all bounded by one releaseTimeout. As with
// ReleaseConnectionWait a refusal or a closed control connection is not
// an error. wait must be called once; not on the reader goroutine.
func (rt *Runtime) StartReleases(ids []uint32) (wait func()) {
	calls := make([]*discovery.Call, 0, len(ids))
	for _, id := range ids {
		if c, err := rt.client.Start(&wire.ReleaseConnection{ConnID: id}); err == nil {
			calls = append(calls, c)
		}
	}
	return func() {
		ctx, cancel := context.WithTimeout(context.Background(), releaseTimeout)
		defer cancel()
		for _, c := range calls {
			if _, files, err := c.Wait(ctx); err == nil {
				closeAll(files)
			}
		}
	}
}

// releaseTimeout bounds a ReleaseConnection request.
const releaseTimeout = 5 * time.Second

// ErrClosed is returned by endpoints used after Close.
var ErrClosed = fmt.Errorf("endpoint closed: %w", os.ErrClosed)

// IsClosed reports whether err means the router connection is gone: closed
// here, refused, or broken on the router's side (a send to a router that
// stopped before this process read its EOF fails with EPIPE or
// ECONNRESET).
func IsClosed(err error) bool {
	return errors.Is(err, os.ErrClosed) || errors.Is(err, parallax.ErrDaemonUnavailable) ||
		errors.Is(err, syscall.EPIPE) || errors.Is(err, syscall.ECONNRESET)
}
