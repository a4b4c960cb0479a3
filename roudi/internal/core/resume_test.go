package core

import (
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/parallax-ipc/parallax"
)

// testIdentity is the identity of client id run by pid (uid 0) with the
// token whose bytes are all id.
func testIdentity(id ClientID, pid int32) (ClientIdentity, ResumeToken) {
	var tok ResumeToken
	for i := range tok {
		tok[i] = byte(id)
	}
	return identityOf(&client{id: id, pid: pid}, tok), tok
}

func TestResumeRestoresRegistry(t *testing.T) {
	r := newTestRouter(t, nil, RouterOptions{})
	id1, tok1 := testIdentity(1, 100)
	id2, tok2 := testIdentity(2, 101)
	r.Step(AdoptClients{IDs: []ClientID{1, 2, 3}, Identities: []ClientIdentity{id1, id2}})
	// New clients never get a reserved id.
	r.Step(ClientConnected{Conn: 10, PID: 100})
	w := replyOf(t, r.Ready()).Result.(Welcome)
	require.Equal(t, ClientID(4), w.Client)
	r.Step(ClientConnected{Conn: 11, PID: 101})
	require.Equal(t, ClientID(5), replyOf(t, r.Ready()).Result.(Welcome).Client)

	typ := TypeInfo{Name: "T", Size: 8}
	ring := Region{Offset: testArenaBase + 4096, Size: 1024}
	link := RestoreLink{ID: 7, Pub: 3, Sub: 9, Ring: ring, Capacity: 64}
	// The publisher's client resumes as 1, the subscriber's as 2.
	r.Step(ClientRequest{Conn: 10, ReqID: 1, Req: ResumeClient{OldClient: 1, Token: tok1, Pubs: []RestorePub{{ID: 3, Topic: "a", Type: typ}}, Links: []RestoreLink{link}}})
	rep := replyOf(t, r.Ready())
	require.NoError(t, rep.Err)
	require.Equal(t, ClientID(1), rep.Result.(Resumed).Client)
	r.Step(ClientRequest{Conn: 11, ReqID: 1, Req: ResumeClient{OldClient: 2, Token: tok2, Subs: []RestoreSub{{ID: 9, Topic: "a", Type: typ, Capacity: 64, Notifier: Region{Offset: testArenaBase, Size: 128}}}, Links: []RestoreLink{link}}})
	require.NoError(t, replyOf(t, r.Ready()).Err)

	snap := r.Snapshot()
	require.Len(t, snap.Connections, 1)
	require.Len(t, snap.Topics, 1)
	// A resumed id cannot be resumed twice; an unreserved one not at all.
	r.Step(ClientConnected{Conn: 12, PID: 102})
	r.Ready()
	r.Step(ClientRequest{Conn: 12, ReqID: 1, Req: ResumeClient{OldClient: 1, Token: tok1}})
	require.ErrorIs(t, replyOf(t, r.Ready()).Err, parallax.ErrProtocol)

	// A new subscriber joins the resumed publisher: a new connection, a
	// region that does not overlap the restored ones.
	r.Step(ClientRequest{Conn: 12, ReqID: 2, Req: CreateSubscriber{Topic: "a", Type: typ}})
	var added int
	for _, a := range r.Ready() {
		if ca, ok := a.(ConnectionAdded); ok {
			added++
			require.Greater(t, uint32(ca.Connection), uint32(7), "new connection ids continue after restored ones")
			require.False(t, ca.Ring.Offset < ring.End() && ring.Offset < ca.Ring.End(), "new ring overlaps a restored one")
		}
	}
	require.Equal(t, 2, added)

	// Deadline: client 3 never resumed and is reclaimed.
	r.Step(ResumeDeadline{})
	var reclaimed []ClientID
	for _, a := range r.Ready() {
		if rc, ok := a.(ReclaimClient); ok {
			reclaimed = append(reclaimed, rc.Client)
		}
	}
	require.Equal(t, []ClientID{3}, reclaimed)
	require.NoError(t, r.arena.check())
}

func TestResumeHalfLinkRemovedAtDeadline(t *testing.T) {
	r := newTestRouter(t, nil, RouterOptions{})
	id1, tok1 := testIdentity(1, 100)
	r.Step(AdoptClients{IDs: []ClientID{1, 2}, Identities: []ClientIdentity{id1}})
	r.Step(ClientConnected{Conn: 10, PID: 100})
	r.Ready()
	ring := Region{Offset: testArenaBase, Size: 1024}
	r.Step(ClientRequest{Conn: 10, ReqID: 1, Req: ResumeClient{OldClient: 1, Token: tok1,
		Pubs:  []RestorePub{{ID: 3, Topic: "a"}},
		Links: []RestoreLink{{ID: 7, Pub: 3, Sub: 9, Ring: ring, Capacity: 64}}}})
	require.NoError(t, replyOf(t, r.Ready()).Err)
	require.Empty(t, r.Snapshot().Connections, "the subscriber side has not resumed")
	r.Step(ResumeDeadline{})
	var removed, reclaimed int
	for _, a := range r.Ready() {
		switch a.(type) {
		case ConnectionRemoved:
			removed++
		case ReclaimClient:
			reclaimed++
		}
	}
	require.Equal(t, 1, removed, "the publisher is told its subscriber is gone")
	require.Equal(t, 1, reclaimed, "client 2 is reclaimed")
	require.NoError(t, r.arena.check())
}
