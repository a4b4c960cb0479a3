package core

import (
	"testing"

	"github.com/stretchr/testify/require"
)

// TestResumeServiceEndpoints: request/response endpoints resume on their
// service, not on a topic of the same name. After the restart a new
// client's request publisher connects to the resumed server, a pub/sub
// subscriber of the same name gets no connection to the resumed client's
// request publisher, and a new server's response publisher connects to
// the resumed client's response subscriber with its pair and max held.
func TestResumeServiceEndpoints(t *testing.T) {
	t.Parallel()
	r, tok1, tok2 := ownedResumeRouter(t)
	// Client 1: request publisher 3, response subscriber 4 paired with it.
	as := do(t, r, ClientRequest{Conn: 10, ReqID: 1, Req: ResumeClient{OldClient: 1, Token: tok1,
		Pubs:  []RestorePub{{ID: 3, Topic: "svc", Type: typT, Kind: KindRequest, Data: dataSeg(500)}},
		Subs:  []RestoreSub{{ID: 4, Topic: "svc", Type: typT, Capacity: 64, Kind: KindResponse, Pair: 3, MaxHeld: 80}},
		Links: serviceLinks()}})
	require.NoError(t, replyOf(t, as).Err)
	// Client 2: request subscriber 9, response publisher 5.
	as = do(t, r, ClientRequest{Conn: 11, ReqID: 1, Req: ResumeClient{OldClient: 2, Token: tok2,
		Pubs:  []RestorePub{{ID: 5, Topic: "svc", Type: typT, Kind: KindResponse, Data: dataSeg(501)}},
		Subs:  []RestoreSub{{ID: 9, Topic: "svc", Type: typT, Capacity: 64, Kind: KindRequest}},
		Links: serviceLinks()}})
	require.NoError(t, replyOf(t, as).Err)
	require.Equal(t, KindRequest, r.pubs[3].topic.kind)
	require.Equal(t, KindResponse, r.subs[4].topic.kind)
	require.Equal(t, PubID(3), r.subs[4].pair)
	require.Equal(t, 80, r.subs[4].maxHeld)
	require.Empty(t, r.topics, "no pub/sub topic was made of the service")
	require.Len(t, r.links, 2, "both connections resumed")

	// A pub/sub subscriber of the same name: no connection.
	do(t, r, ClientConnected{Conn: 12, PID: 102})
	as = do(t, r, ClientRequest{Conn: 12, ReqID: 1, Req: CreateSubscriber{Topic: "svc", Type: typT}})
	require.NoError(t, replyOf(t, as).Err)
	require.Empty(t, r.subs[SubID(r.nextSub)].links, "a topic subscriber connected to a service endpoint")

	// A new client's request publisher connects to the resumed server.
	newPub := r.pubs[createPub(t, r, 12, KindRequest, "svc")]
	require.Len(t, newPub.links, 1)
	require.Equal(t, SubID(9), r.links[newPub.links[0]].sub.id)

	// A new server's response publisher connects to the resumed client's
	// response subscriber, paired, with its max held.
	do(t, r, ClientConnected{Conn: 13, PID: 103})
	respPub := r.pubs[createPub(t, r, 13, KindResponse, "svc")]
	require.Len(t, respPub.links, 1)
	l := r.links[respPub.links[0]]
	require.Equal(t, SubID(4), l.sub.id)
	require.Equal(t, PubID(3), l.sub.pair)
	require.Equal(t, 80, r.maxHeld(l.sub))
}

// TestResumeServicePairChecked: a response subscriber that resumes paired
// with another client's publisher is skipped, as at creation.
func TestResumeServicePairChecked(t *testing.T) {
	t.Parallel()
	r, tok1, tok2 := ownedResumeRouter(t)
	require.NoError(t, replyOf(t, do(t, r, ClientRequest{Conn: 10, ReqID: 1, Req: ResumeClient{OldClient: 1, Token: tok1,
		Pubs: []RestorePub{{ID: 3, Topic: "svc", Type: typT, Kind: KindRequest, Data: dataSeg(500)}}}})).Err)
	require.NoError(t, replyOf(t, do(t, r, ClientRequest{Conn: 11, ReqID: 1, Req: ResumeClient{OldClient: 2, Token: tok2,
		Subs: []RestoreSub{{ID: 4, Topic: "svc", Type: typT, Capacity: 64, Kind: KindResponse, Pair: 3}}}})).Err)
	require.Nil(t, r.subs[4], "a response subscriber paired with another client's publisher resumed")
}

// dataSeg is the one data segment a resuming owned publisher hands back.
func dataSeg(inode uint64) []RestoreDataSeg {
	return []RestoreDataSeg{{Index: 0, ChunkSize: 4096, Count: 300, Bytes: 2 << 20, Inode: inode}}
}

// serviceLinks are the request (3→9) and response (5→4) connections of
// TestResumeServiceEndpoints, as both ends declare them.
func serviceLinks() []RestoreLink {
	return []RestoreLink{
		{ID: 7, Pub: 3, Sub: 9, Capacity: 64, Seg: &RestoreConnSeg{Bound: 80, MaxHeld: 16, Bytes: 8192, Inode: 600}},
		{ID: 8, Pub: 5, Sub: 4, Capacity: 64, Seg: &RestoreConnSeg{Bound: 80, MaxHeld: 16, Bytes: 8192, Inode: 601}},
	}
}
