package core

import (
	"errors"
	"fmt"
	"io"
	"log/slog"
	"slices"

	"github.com/parallax-ipc/parallax"
)

// Defaults for [RouterOptions].
const (
	// DefaultHelloTimeout is the number of ticks an accepted connection may
	// take to complete its handshake.
	DefaultHelloTimeout = 50
	// DefaultQuarantine bounds, in ticks, how long a removed connection's
	// ring (and a removed subscriber's notifier) stays allocated while a
	// survivor that was told has not released it. Survivors release a
	// connection (ReleaseConnection) as soon as they have processed its
	// ConnectionRemoved, and a region is freed when all of them have, or
	// have died: a subscriber still takes what a closed publisher had
	// queued, and nobody touches reused bytes. The bound only matters for a
	// client that stopped processing its control messages; 6000 ticks is
	// one minute at the default tick.
	DefaultQuarantine = 6000
	// maxTopicLen bounds topic names.
	maxTopicLen = 255
)

// RouterOptions configures [NewRouter]. Arena, RingSize and NotifierSize
// are required; the zero value of every other field means its default.
type RouterOptions struct {
	// Rules supplies limits, ring capacities and access rules; nil means
	// [DefaultRules]. It must pass [Rules.Validate]. The router keeps a
	// copy.
	Rules *Rules
	// Arena is the part of the management segment where the router places
	// rings and notifiers. Its offset must be 128-byte aligned.
	Arena Region
	// RingSize returns the bytes a ring of the given capacity occupies
	// (ringbuf's Size).
	RingSize func(capacity int) int
	// NotifierSize is the bytes one subscriber notifier occupies.
	NotifierSize int
	// HelloTimeout is in ticks; 0 means [DefaultHelloTimeout].
	HelloTimeout int
	// Quarantine is in ticks; 0 means [DefaultQuarantine], negative means
	// regions are freed at once (still after the ReclaimClient that lists
	// them).
	Quarantine int
	// Rand is the source of the clients' resume tokens (required: the
	// server passes crypto/rand's Reader; tests inject a deterministic
	// one). The core draws no randomness of its own.
	Rand io.Reader
	// Pools describes the pools and the growth reserve (growth.go);
	// required when Rules.Growth.Enabled.
	Pools PoolLayout
	// Sizes computes owned segment sizes (memory.go); required when
	// Rules.Memory.Owned.
	Sizes SegmentSizes
}

// A Router is the router's deterministic core: the registry of clients,
// topics, publishers, subscribers and connections, the region allocator
// for the management arena, and the rules (types, limits, access) that
// decide requests. It owns no goroutines, sockets, clock or shared memory:
// feed it events with [Router.Step], then perform the actions from
// [Router.Ready] in order.
//
// Use [NewRouter]; the zero value is invalid. A Router must not be copied
// and must not be used concurrently: one goroutine (the server's loop)
// drives it. Given the same options and events, it produces the same
// actions.
type Router struct {
	cfg          Rules
	arena        *arena
	ringSize     func(int) int
	notifierSize int
	helloTimeout uint64
	quarantine   int

	rand    io.Reader
	now     uint64
	pending map[ConnID]uint64 // accepted, no handshake yet → tick accepted
	hellos  hellos            // their deadlines in order (core_timers.go)
	conns   map[ConnID]*client
	clients map[ClientID]*client
	topics  map[string]*topic
	rpc     map[rpcKey]*topic // request/response services' topics (kind.go)
	pubs    map[PubID]*publisher
	subs    map[SubID]*subscriber
	links   map[ConnectionID]*connection

	lastClient ClientID
	nextPub    PubID
	nextSub    SubID
	nextLink   ConnectionID

	retiring []retired // in retirement order, due ticks non-decreasing
	growth   growth    // grown and dedicated pools (growth.go)
	mem      memState  // owned memory (memory.go, conn_state.go)
	segSizes SegmentSizes
	actions  []Action

	// After adopting a restarted domain (core_resume.go).
	reserved     map[ClientID]bool
	identities   map[ClientID]ClientIdentity // of reserved ids (core_identity.go)
	pendingLinks map[ConnectionID]*pendingLink

	reports map[ClientID]int // verified bad-ref reports against a publisher's process (guard.go)
	cuts    map[cutPair]bool // pairs whose connection was cut (cut.go)
	watch   watchState       // service watchers (watch.go)
}

type client struct {
	id       ClientID
	conn     ConnID
	pid      int32
	uid, gid uint32
	name     string
	wrote    bool    // has had a publisher: the payload segments are granted read-write
	pubs     []PubID // creation order
	subs     []SubID // creation order
}

type topic struct {
	kind EndpointKind
	name string
	typ  TypeInfo
	pubs []PubID
	subs []SubID
}

type publisher struct {
	id      PubID
	client  *client
	topic   *topic
	history int
	links   []ConnectionID
}

type subscriber struct {
	pair     PubID // a response subscriber's request publisher (kind.go)
	id       SubID
	client   *client
	topic    *topic
	capacity int
	history  int
	policy   Policy
	maxHeld  int // 0: the default
	notifier Region
	links    []ConnectionID
}

type connection struct {
	id   ConnectionID
	pub  *publisher
	sub  *subscriber
	ring Region
}

type retired struct {
	region Region
	kind   RegionKind
	due    uint64    // freed at this tick at the latest
	waits  []release // survivors that still use the region
}

// release is a survivor that was told a connection was removed and has
// not yet said that it let go of its ring (wire.ReleaseConnection).
type release struct {
	client ClientID
	link   ConnectionID
}

// NewRouter returns a Router with an empty registry.
func NewRouter(opts RouterOptions) (*Router, error) {
	cfg := DefaultRules()
	if opts.Rules != nil {
		cfg = *opts.Rules
	}
	if err := cfg.Validate(); err != nil {
		return nil, fmt.Errorf("create router: %w", err)
	}
	if opts.RingSize == nil || opts.NotifierSize <= 0 || opts.Rand == nil {
		return nil, errors.New("create router: RingSize, a positive NotifierSize and Rand are required")
	}
	if cfg.Memory.Owned && (opts.Sizes.Data == nil || opts.Sizes.Conn == nil) {
		return nil, errors.New("create router: the owned memory model needs Sizes")
	}
	if err := opts.Pools.validate(cfg.Growth); err != nil {
		return nil, fmt.Errorf("create router: %w", err)
	}
	a := &arena{used: make(map[uint64]uint64)} // the owned model places nothing in a management arena
	if !cfg.Memory.Owned || opts.Arena.Size != 0 {
		var err error
		if a, err = newArena(opts.Arena.Offset, opts.Arena.Size); err != nil {
			return nil, fmt.Errorf("create router: %w", err)
		}
	}
	r := &Router{
		cfg:          cfg.Clone(),
		arena:        a,
		ringSize:     opts.RingSize,
		notifierSize: opts.NotifierSize,
		helloTimeout: DefaultHelloTimeout,
		quarantine:   DefaultQuarantine,
		pending:      make(map[ConnID]uint64),
		conns:        make(map[ConnID]*client),
		clients:      make(map[ClientID]*client),
		topics:       make(map[string]*topic),
		rpc:          make(map[rpcKey]*topic),
		pubs:         make(map[PubID]*publisher),
		subs:         make(map[SubID]*subscriber),
		links:        make(map[ConnectionID]*connection),
		growth:       newGrowth(opts.Pools),
		mem:          newMemState(),
		segSizes:     opts.Sizes,
	}
	r.rand = opts.Rand
	if opts.HelloTimeout > 0 {
		r.helloTimeout = uint64(opts.HelloTimeout)
	}
	if opts.Quarantine != 0 {
		r.quarantine = max(opts.Quarantine, 0)
	}
	return r, nil
}

// Step applies one event. Its consequences are queued for [Router.Ready].
func (r *Router) Step(ev Event) {
	switch ev := ev.(type) {
	case ConnAccepted:
		if _, ok := r.conns[ev.Conn]; !ok {
			r.pending[ev.Conn] = r.now
			r.hellos.push(ev.Conn, r.now)
		}
	case ClientConnected:
		r.connect(ev)
	case ClientRequest:
		r.request(ev)
	case ClientDisconnected:
		delete(r.pending, ev.Conn)
		if c, ok := r.conns[ev.Conn]; ok {
			r.removeClient(c, "client disconnected", false, endDisconnected)
		}
	case ProcessExited:
		var dead []*client
		for _, c := range r.clients {
			if c.pid == ev.PID {
				dead = append(dead, c)
			}
		}
		slices.SortFunc(dead, func(a, b *client) int { return int(a.id) - int(b.id) })
		for _, c := range dead {
			r.removeClient(c, "process exited", true, endExited)
		}
		r.memConfirmDeath(ev.PID) // death.go: subscribers whose socket ended first
	case Tick:
		r.tick(max(ev.N, 1))
	case AdoptClients:
		r.adopt(ev)
	case ResumeDeadline:
		r.resumeDeadline()
	case CutConnection:
		r.cut(ev) // cut.go
	case PeerReported:
		r.peerReported(ev) // guard.go
	case RingReported:
		r.ringReported(ev) // guard.go
	case PoolCreated:
		r.poolCreated(ev) // growth.go
	case DedicatedFree:
		r.dedicatedFree(ev)
	case PoolRetired:
		r.poolRetired(ev)
	case DataSegmentCreated:
		r.dataSegmentCreated(ev) // memory.go
	case ConnSegmentCreated:
		r.connSegCreated(ev) // conn_state.go
	default:
		r.log(slog.LevelError, "unknown event", slog.String("type", fmt.Sprintf("%T", ev)))
	}
	r.watchStep(ev) // watch.go
}

// Ready returns the actions queued since the last call, in the order they
// must be performed, and clears the queue. The caller owns the slice.
func (r *Router) Ready() []Action {
	a := r.actions
	r.actions = nil
	return a
}

// Now returns the number of ticks seen.
func (r *Router) Now() uint64 { return r.now }

func (r *Router) emit(a Action) { r.actions = append(r.actions, a) }

func (r *Router) log(level slog.Level, msg string, attrs ...slog.Attr) {
	r.emit(Log{Level: level, Msg: msg, Attrs: attrs})
}

func (r *Router) connect(ev ClientConnected) {
	if c, ok := r.conns[ev.Conn]; ok {
		r.emit(Reply{Conn: ev.Conn, Err: fmt.Errorf("handshake: %w: connection already registered as client %d", parallax.ErrProtocol, c.id)})
		return
	}
	delete(r.pending, ev.Conn)
	if len(r.clients)+len(r.reserved) >= r.cfg.Limits.MaxClients {
		r.emit(Reply{Conn: ev.Conn, Err: fmt.Errorf("handshake: %w: %d clients (limits.max_clients)", parallax.ErrLimit, len(r.clients))})
		r.emit(CloseConn{Conn: ev.Conn, Reason: "client limit reached"})
		r.log(slog.LevelWarn, "client refused: limit reached", slog.Int("pid", int(ev.PID)), slog.String("name", ev.Name))
		return
	}
	// IDs advance round-robin and skip live ones, so a just-freed ID (whose
	// reclaim the server may still be performing) is not reused at once.
	// IDs stay within 1..max_clients: the server indexes each client's
	// accounting table in the management segment by its ID.
	id := r.lastClient
	for {
		id++
		if id == 0 || int(id) > r.cfg.Limits.MaxClients {
			id = 1
		}
		if _, used := r.clients[id]; !used && !r.reserved[id] {
			break
		}
	}
	r.lastClient = id
	c := &client{id: id, conn: ev.Conn, pid: ev.PID, uid: ev.UID, gid: ev.GID, name: ev.Name}
	r.clients[id] = c
	r.conns[ev.Conn] = c
	tok, err := r.newToken()
	if err != nil {
		delete(r.clients, id)
		delete(r.conns, ev.Conn)
		r.emit(Reply{Conn: ev.Conn, Err: fmt.Errorf("handshake: issue a resume token: %w", err)})
		r.emit(CloseConn{Conn: ev.Conn, Reason: "no resume token"})
		return
	}
	r.emit(Reply{Conn: ev.Conn, Result: Welcome{Client: id, Token: tok, Identity: identityOf(c, tok)}})
	r.log(slog.LevelInfo, "client connected", slog.Int("client", int(id)), slog.Int("pid", int(ev.PID)), slog.String("name", ev.Name))
}

// tick advances the clock by n ticks and does the timed work now due. It
// allocates nothing.
func (r *Router) tick(n uint64) {
	r.now += n
	r.expireHellos()
	k := 0
	for _, rt := range r.retiring {
		if rt.due > r.now {
			break
		}
		r.free(rt.region, rt.kind)
		k++
	}
	if k > 0 {
		r.retiring = slices.Delete(r.retiring, 0, k)
	}
}

func (r *Router) logHelloTimeout(conn ConnID) {
	r.log(slog.LevelWarn, "connection closed: no handshake", slog.Uint64("conn", uint64(conn)))
}

// retire frees a region once the survivors in waits have released it (at
// once when there are none), or after the quarantine at the latest. It is
// never taken back earlier, even when the arena is full: allocations are
// refused instead.
func (r *Router) retire(reg Region, kind RegionKind, waits []release) {
	if r.owned() {
		return // no arena regions: a connection's segment has its own life cycle (conn_state.go)
	}
	if r.quarantine == 0 || len(waits) == 0 {
		r.free(reg, kind)
		return
	}
	r.retiring = append(r.retiring, retired{region: reg, kind: kind, due: r.now + uint64(r.quarantine), waits: slices.Clone(waits)})
}

// released takes the waits matching pred off every retired region (one
// per region when once is set) and frees the regions nobody waits for any
// more.
func (r *Router) released(pred func(release) bool, once bool) {
	keep := r.retiring[:0]
	for _, rt := range r.retiring {
		before, n := len(rt.waits), 0
		rt.waits = slices.DeleteFunc(rt.waits, func(w release) bool {
			if pred(w) && (!once || n == 0) {
				n++
				return true
			}
			return false
		})
		if len(rt.waits) == 0 && before > 0 {
			r.free(rt.region, rt.kind)
			continue
		}
		keep = append(keep, rt)
	}
	clear(r.retiring[len(keep):])
	r.retiring = keep
}

func (r *Router) free(reg Region, kind RegionKind) {
	r.emit(FreeRegion{Region: reg, Kind: kind})
	r.arena.release(reg)
}

// removeClient forgets a dead client: its connections (telling the
// surviving peers), publishers, subscribers and emptied topics. It emits
// ReclaimClient before the FreeRegion of any region the client used.
func (r *Router) removeClient(c *client, reason string, closeConn bool, why endCause) {
	rc := ReclaimClient{Client: c.id, PID: c.pid}
	var regions []retired
	for _, id := range slices.Clone(c.pubs) {
		p := r.pubs[id]
		for _, lid := range slices.Clone(p.links) {
			l := r.links[lid]
			if !r.owned() {
				rc.PubRings = append(rc.PubRings, l.ring)
			}
			waits := r.unlink(l, l.sub.client != c, false, reason, why)
			regions = append(regions, retired{region: l.ring, kind: RegionRing, waits: waits})
		}
		r.dropPublisher(p)
	}
	for _, id := range slices.Clone(c.subs) {
		s := r.subs[id]
		var all []release // the notifier waits for every publisher told
		for _, lid := range slices.Clone(s.links) {
			l := r.links[lid]
			if !r.owned() {
				rc.SubRings = append(rc.SubRings, l.ring)
			}
			waits := r.unlink(l, false, l.pub.client != c, reason, why)
			regions = append(regions, retired{region: l.ring, kind: RegionRing, waits: waits})
			all = append(all, waits...)
		}
		if !r.owned() {
			rc.Notifiers = append(rc.Notifiers, s.notifier)
		}
		regions = append(regions, retired{region: s.notifier, kind: RegionNotifier, waits: all})
		r.dropSubscriber(s)
	}
	delete(r.clients, c.id)
	delete(r.conns, c.conn)
	delete(r.reports, c.id) // a new process given this id starts clean
	r.memDeparted(c, why)   // death.go
	r.emit(rc)
	for _, rt := range regions {
		r.retire(rt.region, rt.kind, rt.waits)
	}
	// A dead client releases nothing any more: regions that waited only
	// for it are free now.
	r.released(func(w release) bool { return w.client == c.id }, false)
	if closeConn {
		r.emit(CloseConn{Conn: c.conn, Reason: reason})
	}
	r.log(slog.LevelInfo, "client gone", slog.Int("client", int(c.id)), slog.Int("pid", int(c.pid)), slog.String("reason", reason))
}

// unlink removes a connection from the registry and tells the requested
// sides. It does not free the ring; it returns the sides told, whose
// release the ring (and a closed subscriber's notifier) waits for.
//
// In the owned model why decides the code each side is told and whether
// the publisher is told ConnectionClosing instead (death.go).
func (r *Router) unlink(l *connection, tellSub, tellPub bool, reason string, why endCause) []release {
	var waits []release
	e := r.memEnd(l, tellSub, tellPub, why) // death.go
	rm := ConnectionRemoved{Connection: l.id, Pub: l.pub.id, Sub: l.sub.id, Reason: reason}
	if tellSub {
		rm.Conn, rm.Code = l.sub.client.conn, e.subCode
		r.emit(rm)
		waits = append(waits, release{client: l.sub.client.id, link: l.id})
	}
	if tellPub {
		if e.closing {
			r.emit(ConnectionClosing{Conn: l.pub.client.conn, Connection: l.id, Pub: l.pub.id, Sub: l.sub.id, Reason: reason})
		} else {
			rm.Conn, rm.Code = l.pub.client.conn, e.pubCode
			r.emit(rm)
		}
		waits = append(waits, release{client: l.pub.client.id, link: l.id})
	}
	delete(r.links, l.id)
	l.sub.links = deleteValue(l.sub.links, l.id)
	l.pub.links = deleteValue(l.pub.links, l.id)
	r.memUnlinked(l, tellSub, tellPub, e, why) // conn_state.go
	return waits
}

// dropPublisher removes a publisher without links from the registry.
func (r *Router) dropPublisher(p *publisher) {
	r.memDropPublisher(p)
	delete(r.pubs, p.id)
	r.forgetCuts(func(c cutPair) bool { return c.pub == p.id })
	p.client.pubs = deleteValue(p.client.pubs, p.id)
	p.topic.pubs = deleteValue(p.topic.pubs, p.id)
	r.dropTopicIfEmpty(p.topic)
}

// dropSubscriber removes a subscriber without links from the registry.
func (r *Router) dropSubscriber(s *subscriber) {
	delete(r.subs, s.id)
	r.forgetCuts(func(c cutPair) bool { return c.sub == s.id })
	s.client.subs = deleteValue(s.client.subs, s.id)
	s.topic.subs = deleteValue(s.topic.subs, s.id)
	r.dropTopicIfEmpty(s.topic)
}

func (r *Router) dropTopicIfEmpty(t *topic) {
	if len(t.pubs) == 0 && len(t.subs) == 0 {
		if t.kind != KindTopic {
			delete(r.rpc, rpcKey{t.kind, t.name})
			return
		}
		delete(r.topics, t.name)
	}
}

func deleteValue[S ~[]E, E comparable](s S, v E) S {
	if i := slices.Index(s, v); i >= 0 {
		return slices.Delete(s, i, i+1)
	}
	return s
}
