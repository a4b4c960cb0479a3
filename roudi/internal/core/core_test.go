package core

import (
	"fmt"
	"math/rand/v2"
	"slices"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/parallax-ipc/parallax"
	"github.com/parallax-ipc/parallax/internal/testutil"
)

func newTestRouter(t *testing.T, mutate func(*Rules), opts RouterOptions) *Router {
	t.Helper()
	cfg := DefaultRules()
	if mutate != nil {
		mutate(&cfg)
	}
	opts.Rules = &cfg
	if opts.Sizes.Data == nil {
		opts.Sizes = testSizes
	}
	if opts.Rand == nil {
		opts.Rand = &countingReader{}
	}
	r, err := NewRouter(opts)
	require.NoError(t, err)
	return r
}

// do steps ev, checks invariants and returns the actions.
func do(t *testing.T, r *Router, ev Event) []Action {
	t.Helper()
	r.Step(ev)
	require.NoError(t, r.checkInvariants())
	return r.Ready()
}

// doAck is do, acknowledging every segment creation the actions ask for
// (stepAck).
func doAck(t *testing.T, r *Router, ev Event) []Action {
	t.Helper()
	return stepAck(r, ev, func() { require.NoError(t, r.checkInvariants()) })
}

// stepAck steps ev, then a successful creation of every segment the
// actions ask for (as the server reports them), calling check after each
// step; it returns all the actions in order.
func stepAck(r *Router, ev Event, check func()) []Action {
	r.Step(ev)
	check()
	return ackSegments(r, r.Ready(), check)
}

// ackSegments steps a successful creation of every segment actions ask
// for (and of those the steps ask for), calling check after each step,
// and returns actions followed by what the steps emitted.
func ackSegments(r *Router, actions []Action, check func()) []Action {
	for i := 0; i < len(actions); i++ { // grows while acknowledging
		switch a := actions[i].(type) {
		case CreateDataSegment:
			r.Step(DataSegmentCreated{Pub: a.Pub, Index: a.Index})
		case CreateConnSegment:
			r.Step(ConnSegmentCreated{Connection: a.Connection})
		default:
			continue
		}
		check()
		actions = append(actions, r.Ready()...)
	}
	return actions
}

func replyOf(t *testing.T, as []Action) Reply {
	t.Helper()
	for _, a := range as {
		if rp, ok := a.(Reply); ok {
			return rp
		}
	}
	t.Fatalf("no reply in %v", as)
	return Reply{}
}

func actionsOf[T Action](as []Action) []T {
	var out []T
	for _, a := range as {
		if v, ok := a.(T); ok {
			out = append(out, v)
		}
	}
	return out
}

var typT = TypeInfo{Name: "T", Size: 8, Align: 8}

func TestNewRouterRejectsBadOptions(t *testing.T) {
	t.Parallel()
	_, err := NewRouter(RouterOptions{Sizes: testSizes})
	require.ErrorContains(t, err, "Rand")
	_, err = NewRouter(RouterOptions{Rand: &countingReader{}})
	require.ErrorContains(t, err, "Sizes")
	bad := DefaultRules()
	bad.Rings.DefaultCapacity = 3
	_, err = NewRouter(RouterOptions{Rules: &bad, Rand: &countingReader{}, Sizes: testSizes})
	require.ErrorContains(t, err, "default ring capacity must be a power of two, got 3")
}

func TestTypeMismatchIsIncompatibleType(t *testing.T) {
	t.Parallel()
	r := newTestRouter(t, nil, RouterOptions{})
	doAck(t, r, ClientConnected{Conn: 1, PID: 1})
	require.NoError(t, replyOf(t, doAck(t, r, ClientRequest{Conn: 1, ReqID: 1, Req: CreatePublisher{Topic: "a", Type: typT}})).Err)
	for _, typ := range []TypeInfo{{"U", 8, 8}, {"T", 16, 8}, {"T", 8, 4}} {
		rp := replyOf(t, doAck(t, r, ClientRequest{Conn: 1, ReqID: 2, Req: CreateSubscriber{Topic: "a", Type: typ}}))
		require.ErrorIs(t, rp.Err, parallax.ErrIncompatibleType)
		require.ErrorContains(t, rp.Err, typT.String())
		require.ErrorContains(t, rp.Err, typ.String())
	}
}

func TestLimitsAreErrLimit(t *testing.T) {
	t.Parallel()
	r := newTestRouter(t, func(c *Rules) { c.Limits.MaxPublishers = 1; c.Limits.MaxTopics = 1 }, RouterOptions{})
	doAck(t, r, ClientConnected{Conn: 1, PID: 1})
	require.NoError(t, replyOf(t, doAck(t, r, ClientRequest{Conn: 1, ReqID: 1, Req: CreatePublisher{Topic: "a", Type: typT}})).Err)
	require.ErrorIs(t, replyOf(t, doAck(t, r, ClientRequest{Conn: 1, ReqID: 2, Req: CreatePublisher{Topic: "a", Type: typT}})).Err, parallax.ErrLimit)
	require.ErrorIs(t, replyOf(t, doAck(t, r, ClientRequest{Conn: 1, ReqID: 3, Req: CreateSubscriber{Topic: "b", Type: typT}})).Err, parallax.ErrLimit)
}

func TestAccessRules(t *testing.T) {
	t.Parallel()
	r := newTestRouter(t, func(c *Rules) {
		c.Access = []AccessRule{{Topic: "cam/*", PublishUIDs: []uint32{1000}, SubscribeGIDs: []uint32{44}}}
	}, RouterOptions{})
	doAck(t, r, ClientConnected{Conn: 1, PID: 1, UID: 1000, GID: 1000})
	doAck(t, r, ClientConnected{Conn: 2, PID: 2, UID: 0, GID: 44})
	require.NoError(t, replyOf(t, doAck(t, r, ClientRequest{Conn: 1, Req: CreatePublisher{Topic: "cam/0", Type: typT}})).Err)
	require.ErrorIs(t, replyOf(t, doAck(t, r, ClientRequest{Conn: 2, Req: CreatePublisher{Topic: "cam/0", Type: typT}})).Err, parallax.ErrPermissionDenied)
	require.ErrorIs(t, replyOf(t, doAck(t, r, ClientRequest{Conn: 1, Req: CreateSubscriber{Topic: "cam/0", Type: typT}})).Err, parallax.ErrPermissionDenied)
	require.NoError(t, replyOf(t, doAck(t, r, ClientRequest{Conn: 2, Req: CreateSubscriber{Topic: "cam/0", Type: typT}})).Err)
	require.NoError(t, replyOf(t, doAck(t, r, ClientRequest{Conn: 2, Req: CreatePublisher{Topic: "other", Type: typT}})).Err)
}

func TestLateJoinerAndPubAfterSubs(t *testing.T) {
	t.Parallel()
	r := newTestRouter(t, nil, RouterOptions{})
	for c := ConnID(1); c <= 3; c++ {
		doAck(t, r, ClientConnected{Conn: c, PID: int32(c)})
	}
	// Subscribers first.
	doAck(t, r, ClientRequest{Conn: 1, Req: CreateSubscriber{Topic: "a", Type: typT, QueueCapacity: 8}})
	doAck(t, r, ClientRequest{Conn: 2, Req: CreateSubscriber{Topic: "a", Type: typT, QueueCapacity: 8}})
	as := doAck(t, r, ClientRequest{Conn: 3, Req: CreatePublisher{Topic: "a", Type: typT, History: 3}})
	added := actionsOf[ConnectionAdded](as)
	require.Len(t, added, 4)
	// Subscriber's client first, then the publisher's, per connection.
	require.Equal(t, []ConnID{1, 3, 2, 3}, []ConnID{added[0].Conn, added[1].Conn, added[2].Conn, added[3].Conn})
	require.Len(t, actionsOf[CreateConnSegment](as), 2)
	for _, a := range added {
		require.Equal(t, 0, a.History) // subscribers asked for none
	}
	// A late subscriber asking for history gets min(pub, sub).
	as = doAck(t, r, ClientRequest{Conn: 1, Req: CreateSubscriber{Topic: "a", Type: typT, History: 5}})
	added = actionsOf[ConnectionAdded](as)
	require.Len(t, added, 2)
	require.Equal(t, 3, added[0].History)
	require.Len(t, r.Snapshot().Connections, 3)
}

func TestDeathCleanupOrdering(t *testing.T) {
	t.Parallel()
	r := newTestRouter(t, nil, RouterOptions{})
	doAck(t, r, ClientConnected{Conn: 1, PID: 10})
	doAck(t, r, ClientConnected{Conn: 2, PID: 20})
	doAck(t, r, ClientRequest{Conn: 1, Req: CreatePublisher{Topic: "a", Type: typT}})
	doAck(t, r, ClientRequest{Conn: 2, Req: CreateSubscriber{Topic: "a", Type: typT}})
	doAck(t, r, ClientRequest{Conn: 2, Req: CreatePublisher{Topic: "b", Type: typT}})
	doAck(t, r, ClientRequest{Conn: 1, Req: CreateSubscriber{Topic: "b", Type: typT}})

	as := doAck(t, r, ProcessExited{PID: 20})
	rm := actionsOf[ConnectionRemoved](as)
	require.Len(t, rm, 2)
	for _, x := range rm {
		require.Equal(t, ConnID(1), x.Conn)
	}
	require.Len(t, actionsOf[ReclaimClient](as), 1)
	require.Len(t, actionsOf[CloseConn](as), 1)

	require.Empty(t, doAck(t, r, ClientDisconnected{Conn: 2}))
	require.Empty(t, doAck(t, r, ProcessExited{PID: 20}))
	snap := r.Snapshot()
	require.Len(t, snap.Clients, 1)
	require.Len(t, snap.Topics, 2) // client 1 still holds a pub on a and a sub on b
	require.Empty(t, snap.Connections)
}

// TestRandomEventsKeepInvariants drives the core with random events and
// checks the invariants after every step, plus that every request gets
// exactly one reply.
func TestRandomEventsKeepInvariants(t *testing.T) {
	t.Parallel()
	rng := testutil.Rand(t)
	runs, steps := 40, 400
	if testing.Short() {
		runs, steps = 8, 200
	}
	for run := range runs {
		t.Run(fmt.Sprint(run), func(t *testing.T) {
			randomRun(t, rand.New(rand.NewPCG(rng.Uint64(), rng.Uint64())), steps)
		})
	}
}

func randomRun(t *testing.T, rng *rand.Rand, steps int) {
	r := newTestRouter(t, func(c *Rules) {
		c.Limits.MaxClients = 6
		c.Limits.MaxTopics = 4
		c.Limits.MaxPublishers = 10
		c.Limits.MaxSubscribers = 10
		c.Limits.MaxConnections = 30
		c.Rings.MaxCapacity = 64
		c.Limits.MaxQueueCapacity = 64
		c.Rings.DefaultCapacity = 16
		c.Access = []AccessRule{{Topic: "t0", PublishUIDs: []uint32{0}}}
	}, RouterOptions{HelloTimeout: 1 + rng.IntN(4)})
	topics := []string{"t0", "t1", "t2", "t3", "t4"}
	types := []TypeInfo{typT, {Name: "U", Size: 16, Align: 8}}
	var reqID uint32
	type removal struct {
		conn ConnID
		link ConnectionID
	}
	var told []removal // ConnectionRemoved pushes not yet released
	for range steps {
		conn := ConnID(1 + rng.IntN(8))
		var ev Event
		var isReq bool
		switch k := rng.IntN(22); {
		case k < 2:
			ev = ConnAccepted{Conn: conn}
		case k < 5:
			ev = ClientConnected{Conn: conn, PID: int32(conn % 5), UID: uint32(rng.IntN(2)), GID: 7}
		case k < 10:
			reqID++
			isReq = true
			ev = ClientRequest{Conn: conn, ReqID: reqID, Req: CreateSubscriber{
				Topic: topics[rng.IntN(len(topics))], Type: types[rng.IntN(len(types))],
				QueueCapacity: rng.IntN(80), History: rng.IntN(3), Policy: Policy(rng.IntN(3)),
			}}
		case k < 14:
			reqID++
			isReq = true
			ev = ClientRequest{Conn: conn, ReqID: reqID, Req: CreatePublisher{
				Topic: topics[rng.IntN(len(topics))], Type: types[rng.IntN(len(types))], History: rng.IntN(3),
			}}
		case k < 16:
			reqID++
			isReq = true
			if rng.IntN(2) == 0 {
				ev = ClientRequest{Conn: conn, ReqID: reqID, Req: ClosePublisher{Pub: PubID(1 + rng.IntN(12))}}
			} else {
				ev = ClientRequest{Conn: conn, ReqID: reqID, Req: CloseSubscriber{Sub: SubID(1 + rng.IntN(12))}}
			}
		case k < 17 && rng.IntN(2) == 0:
			ev = ClientDisconnected{Conn: conn}
		case k < 17:
			// A release: mostly of a removal some client was told
			// about, by that client (once or twice), else of anything.
			reqID++
			isReq = true
			link := ConnectionID(1 + rng.IntN(40))
			if len(told) > 0 && rng.IntN(5) != 0 {
				i := rng.IntN(len(told))
				conn, link = told[i].conn, told[i].link
				if rng.IntN(3) != 0 {
					told = slices.Delete(told, i, i+1)
				}
			}
			ev = ClientRequest{Conn: conn, ReqID: reqID, Req: ReleaseConnection{Connection: link}}
		case k < 18:
			ev = ProcessExited{PID: int32(rng.IntN(5))}
		case k < 20:
			// Reports of corrupted rings, true or not, from anyone.
			reqID++
			isReq = true
			link := ConnectionID(1 + rng.IntN(20))
			if k == 18 {
				ev = PeerReported{Conn: conn, ReqID: reqID, Connection: link}
				break
			}
			ev = RingReported{Conn: conn, ReqID: reqID, Connection: link}
		default:
			ev = Tick{}
		}
		var as []Action
		require.NotPanics(t, func() { as = doAck(t, r, ev) }, "%#v", ev)
		replies := 0
		for _, a := range as {
			switch a := a.(type) {
			case Reply:
				if isReq && a.ReqID == reqID {
					replies++
					require.True(t, (a.Err == nil) != (a.Result == nil), "reply %v", a)
				}
			case ConnectionRemoved:
				told = append(told, removal{a.Conn, a.Connection})
			}
		}
		if isReq {
			require.Equal(t, 1, replies, "%#v -> %v", ev, as)
		}
	}
}

func BenchmarkRouterCreateAndDie(b *testing.B) {
	for _, subs := range []int{1, 8} {
		b.Run(fmt.Sprintf("subs=%d", subs), func(b *testing.B) {
			r, err := NewRouter(RouterOptions{Rand: &countingReader{}, Sizes: testSizes})
			require.NoError(b, err)
			none := func() {}
			b.ReportAllocs()
			pid := int32(0)
			for b.Loop() {
				pid++
				stepAck(r, ClientConnected{Conn: ConnID(pid), PID: pid}, none)
				stepAck(r, ClientRequest{Conn: ConnID(pid), ReqID: 1, Req: CreatePublisher{Topic: "t", Type: typT}}, none)
				for range subs {
					stepAck(r, ClientRequest{Conn: ConnID(pid), ReqID: 2, Req: CreateSubscriber{Topic: "t", Type: typT, QueueCapacity: 16}}, none)
				}
				stepAck(r, ProcessExited{PID: pid}, none)
			}
		})
	}
}
