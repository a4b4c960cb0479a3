package core

import (
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/parallax-ipc/parallax"
)

// ownedRouter is a router in the owned model with clients 1..n connected.
func ownedRouter(t *testing.T, n int) *Router {
	t.Helper()
	r := newTestRouter(t, func(c *Rules) { c.Memory.Hugepages = HugeNever }, RouterOptions{Sizes: testSizes})
	for i := range n {
		do(t, r, ClientConnected{Conn: ConnID(i + 1), PID: int32(i + 1)})
	}
	return r
}

// createPub creates an owned publisher of kind on conn; it returns its id.
func createPub(t *testing.T, r *Router, conn ConnID, kind EndpointKind, name string) PubID {
	t.Helper()
	as := do(t, r, ClientRequest{Conn: conn, ReqID: 1, Req: CreatePublisher{Topic: name, Type: typT, Kind: kind}})
	cr := actionsOf[CreateDataSegment](as)
	require.Len(t, cr, 1, "%v", as)
	rp := replyOf(t, do(t, r, DataSegmentCreated{Pub: cr[0].Pub, Index: 0}))
	require.NoError(t, rp.Err)
	return rp.Result.(PublisherCreated).Pub
}

// TestServicePairing: a client's response subscriber pairs with its own
// request publisher only, the pair reaches the server's response
// publisher in ConnectionAdded, and service topics meet neither pub/sub
// topics of the same name nor each other.
func TestServicePairing(t *testing.T) {
	t.Parallel()
	r := ownedRouter(t, 3) // 1: server, 2: client, 3: another client
	do(t, r, ClientRequest{Conn: 1, ReqID: 1, Req: CreateSubscriber{Topic: "svc", Type: typT, Kind: KindRequest}})
	respPub := createPub(t, r, 1, KindResponse, "svc")
	req2 := createPub(t, r, 2, KindRequest, "svc")
	req3 := createPub(t, r, 3, KindRequest, "svc")
	topicPub := createPub(t, r, 3, KindTopic, "svc")

	// Client 3 claims client 2's request publisher: refused.
	rp := replyOf(t, do(t, r, ClientRequest{Conn: 3, ReqID: 2, Req: CreateSubscriber{Topic: "svc", Type: typT, Kind: KindResponse, Pair: req2}}))
	require.ErrorIs(t, rp.Err, parallax.ErrPermissionDenied)
	// A pair that is not a request publisher of this service: refused.
	rp = replyOf(t, do(t, r, ClientRequest{Conn: 3, ReqID: 2, Req: CreateSubscriber{Topic: "svc", Type: typT, Kind: KindResponse, Pair: topicPub}}))
	require.ErrorIs(t, rp.Err, parallax.ErrProtocol)
	rp = replyOf(t, do(t, r, ClientRequest{Conn: 3, ReqID: 2, Req: CreateSubscriber{Topic: "svc", Type: typT, Kind: KindRequest, Pair: req3}}))
	require.ErrorIs(t, rp.Err, parallax.ErrProtocol)

	as := do(t, r, ClientRequest{Conn: 2, ReqID: 3, Req: CreateSubscriber{Topic: "svc", Type: typT, Kind: KindResponse, Pair: req2}})
	require.NoError(t, replyOf(t, as).Err)
	added := actionsOf[ConnectionAdded](as)
	require.Len(t, added, 2, "one connection, told to both ends: %v", added)
	for _, a := range added {
		require.Equal(t, respPub, a.Pub, "only the server's response publisher: %+v", a)
		require.Equal(t, req2, a.Pair)
	}
	// A pub/sub subscriber of "svc" meets the pub/sub publisher only.
	as = do(t, r, ClientRequest{Conn: 3, ReqID: 4, Req: CreateSubscriber{Topic: "svc", Type: typT}})
	require.NoError(t, replyOf(t, as).Err)
	for _, a := range actionsOf[ConnectionAdded](as) {
		require.Equal(t, topicPub, a.Pub)
		require.Zero(t, a.Pair)
	}
}
