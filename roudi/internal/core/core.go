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
	// maxTopicLen bounds topic names.
	maxTopicLen = 255
)

// RouterOptions configures [NewRouter]. Rand and Sizes are required; the
// zero value of every other field means its default.
type RouterOptions struct {
	// Rules supplies limits, ring capacities and access rules; nil means
	// [DefaultRules]. It must pass [Rules.Validate]. The router keeps a
	// copy.
	Rules *Rules
	// HelloTimeout is in ticks; 0 means [DefaultHelloTimeout].
	HelloTimeout int
	// Rand is the source of the clients' resume tokens (required: the
	// server passes crypto/rand's Reader; tests inject a deterministic
	// one). The core draws no randomness of its own.
	Rand io.Reader
	// Sizes computes the sizes of publishers' data segments and of
	// connection segments (memory.go).
	Sizes SegmentSizes
}

// A Router is the router's deterministic core: the registry of clients,
// topics, publishers, subscribers and connections, the memory of each
// publisher and connection (memory.go, conn_state.go), and the rules (types, limits, access) that
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
	helloTimeout uint64

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

	mem      memState // owned memory (memory.go, conn_state.go)
	segSizes SegmentSizes
	actions  []Action

	// After adopting a restarted domain (core_resume.go).
	reserved     map[ClientID]bool
	identities   map[ClientID]ClientIdentity // of reserved ids (core_identity.go)
	pendingLinks map[ConnectionID]*pendingLink

	cuts  map[cutPair]bool // pairs whose connection was cut (cut.go)
	watch watchState       // service watchers (watch.go)
}

type client struct {
	id       ClientID
	conn     ConnID
	pid      int32
	uid, gid uint32
	name     string
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
	links    []ConnectionID
}

type connection struct {
	id  ConnectionID
	pub *publisher
	sub *subscriber
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
	if opts.Rand == nil || opts.Sizes.Data == nil || opts.Sizes.Conn == nil {
		return nil, errors.New("create router: Rand and Sizes are required")
	}
	r := &Router{
		cfg:          cfg.Clone(),
		helloTimeout: DefaultHelloTimeout,
		pending:      make(map[ConnID]uint64),
		conns:        make(map[ConnID]*client),
		clients:      make(map[ClientID]*client),
		topics:       make(map[string]*topic),
		rpc:          make(map[rpcKey]*topic),
		pubs:         make(map[PubID]*publisher),
		subs:         make(map[SubID]*subscriber),
		links:        make(map[ConnectionID]*connection),
		mem:          newMemState(),
		segSizes:     opts.Sizes,
	}
	r.rand = opts.Rand
	if opts.HelloTimeout > 0 {
		r.helloTimeout = uint64(opts.HelloTimeout)
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
	// IDs stay within 1..max_clients.
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
}

func (r *Router) logHelloTimeout(conn ConnID) {
	r.log(slog.LevelWarn, "connection closed: no handshake", slog.Uint64("conn", uint64(conn)))
}

// removeClient forgets a dead client: its connections (telling the
// surviving peers), publishers, subscribers and emptied topics.
func (r *Router) removeClient(c *client, reason string, closeConn bool, why endCause) {
	for _, id := range slices.Clone(c.pubs) {
		p := r.pubs[id]
		for _, lid := range slices.Clone(p.links) {
			l := r.links[lid]
			r.unlink(l, l.sub.client != c, false, reason, why)
		}
		r.dropPublisher(p)
	}
	for _, id := range slices.Clone(c.subs) {
		s := r.subs[id]
		for _, lid := range slices.Clone(s.links) {
			l := r.links[lid]
			r.unlink(l, false, l.pub.client != c, reason, why)
		}
		r.dropSubscriber(s)
	}
	delete(r.clients, c.id)
	delete(r.conns, c.conn)
	r.memDeparted(c, why) // death.go
	r.emit(ReclaimClient{Client: c.id, PID: c.pid})
	if closeConn {
		r.emit(CloseConn{Conn: c.conn, Reason: reason})
	}
	r.log(slog.LevelInfo, "client gone", slog.Int("client", int(c.id)), slog.Int("pid", int(c.pid)), slog.String("reason", reason))
}

// unlink removes a connection from the registry and tells the requested
// sides; why decides the code each side is told and whether the publisher
// is told ConnectionClosing instead (death.go). The connection segment
// has its own life cycle (conn_state.go).
func (r *Router) unlink(l *connection, tellSub, tellPub bool, reason string, why endCause) {
	e := r.memEnd(l, tellSub, tellPub, why) // death.go
	rm := ConnectionRemoved{Connection: l.id, Pub: l.pub.id, Sub: l.sub.id, Reason: reason}
	if tellSub {
		rm.Conn, rm.Code = l.sub.client.conn, e.subCode
		r.emit(rm)
	}
	if tellPub {
		if e.closing {
			r.emit(ConnectionClosing{Conn: l.pub.client.conn, Connection: l.id, Pub: l.pub.id, Sub: l.sub.id, Reason: reason})
		} else {
			rm.Conn, rm.Code = l.pub.client.conn, e.pubCode
			r.emit(rm)
		}
	}
	delete(r.links, l.id)
	l.sub.links = deleteValue(l.sub.links, l.id)
	l.pub.links = deleteValue(l.pub.links, l.id)
	r.memUnlinked(l, tellSub, tellPub, e, why) // conn_state.go
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
