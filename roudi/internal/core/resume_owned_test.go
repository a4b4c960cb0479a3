package core

import (
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/parallax-ipc/parallax"
)

// ownedResumeRouter is an owned-model router that adopted clients 1
// (publisher 3's) and 2 (subscriber 9's), each connected and not yet
// resumed.
func ownedResumeRouter(t *testing.T) (r *Router, tok1, tok2 ResumeToken) {
	t.Helper()
	r = newTestRouter(t, func(c *Rules) {
		c.Memory.Owned = true
		c.Memory.Hugepages = HugeNever
	}, RouterOptions{Sizes: testSizes})
	id1, tok1 := testIdentity(1, 100)
	id2, tok2 := testIdentity(2, 101)
	r.Step(AdoptClients{IDs: []ClientID{1, 2}, Identities: []ClientIdentity{id1, id2}})
	r.Step(ClientConnected{Conn: 10, PID: 100})
	r.Step(ClientConnected{Conn: 11, PID: 101})
	r.Ready()
	return r, tok1, tok2
}

var (
	ownedTyp  = TypeInfo{Name: "T"}
	ownedRing = Region{} // the owned model has no arena: rings live in connection segments
)

func ownedPubResume(tok ResumeToken, connInode uint64) ResumeClient {
	return ResumeClient{OldClient: 1, Token: tok,
		Pubs: []RestorePub{{ID: 3, Topic: "a", Type: ownedTyp, MaxLoans: 4,
			Data: []RestoreDataSeg{{Index: 0, ChunkSize: 4096, Count: 300, Bytes: 2 << 20, Inode: 500}}}},
		Links: []RestoreLink{{ID: 7, Pub: 3, Sub: 9, Ring: ownedRing, Capacity: 64, Seg: &RestoreConnSeg{Bound: 80, MaxHeld: 16, Bytes: 8192, Inode: connInode}}}}
}

func ownedSubResume(tok ResumeToken, connInode uint64) ResumeClient {
	return ResumeClient{OldClient: 2, Token: tok,
		Subs:  []RestoreSub{{ID: 9, Topic: "a", Type: ownedTyp, Capacity: 64, Notifier: Region{}}},
		Links: []RestoreLink{{ID: 7, Pub: 3, Sub: 9, Ring: ownedRing, Capacity: 64, Seg: &RestoreConnSeg{Bound: 80, MaxHeld: 16, Bytes: 8192, Inode: connInode}}}}
}

// TestResumeOwnedAdopts: both ends hand back the connection segment with
// the same inode: the publisher's memory and the connection are recorded
// live, the server keeps the fds, and a new subscriber of the restored
// publisher gets a connection segment and the adopted data segment.
func TestResumeOwnedAdopts(t *testing.T) {
	t.Parallel()
	r, tok1, tok2 := ownedResumeRouter(t)
	as := do(t, r, ClientRequest{Conn: 10, ReqID: 1, Req: ownedPubResume(tok1, 600)})
	require.NoError(t, replyOf(t, as).Err)
	require.Equal(t, []KeepAdopted{{Pub: 3, Data: []uint16{0}}}, actionsOf[KeepAdopted](as))
	as = do(t, r, ClientRequest{Conn: 11, ReqID: 1, Req: ownedSubResume(tok2, 600)})
	require.NoError(t, replyOf(t, as).Err)
	require.Equal(t, []KeepAdopted{{Connection: 7}}, actionsOf[KeepAdopted](as))
	m := r.Memory()
	require.Len(t, m.Publishers, 1)
	require.Equal(t, PubMemory{Pub: 3, Topic: "a", ChunkSize: 4096, Chunks: 300, Bytes: 2 << 20,
		Segments: []SegMemory{{Index: 0, ChunkSize: 4096, Count: 300, Bytes: 2 << 20, Live: true}}}, m.Publishers[0])
	require.Equal(t, []ConnMemory{{Connection: 7, Pub: 3, State: ConnLive, Bound: 80, Bytes: 8192}}, m.Connections)
	require.Equal(t, uint64(2<<20+8192), m.SharedBytes)

	// A new subscriber of the restored publisher.
	do(t, r, ClientConnected{Conn: 12, PID: 102})
	do(t, r, ClientRequest{Conn: 12, ReqID: 1, Req: CreateSubscriber{Topic: "a", Type: ownedTyp}})
	as = do(t, r, ConnSegmentCreated{Connection: 8})
	var roGrant bool
	for _, g := range actionsOf[GrantSegments](as) {
		roGrant = roGrant || g.Conn == 12 && g.ReadOnly && g.Pub == 3 && len(g.Data) == 1 && g.Data[0] == 0
	}
	require.True(t, roGrant, "the new subscriber is granted the adopted data segment read-only: %v", as)
}

// TestResumeOwnedRefused: a resume whose owned part is not the client's to
// hand back is refused whole, and nothing is adopted.
func TestResumeOwnedRefused(t *testing.T) {
	t.Parallel()
	t.Run("connection inode differs from the other end's", func(t *testing.T) {
		r, tok1, tok2 := ownedResumeRouter(t)
		require.NoError(t, replyOf(t, do(t, r, ClientRequest{Conn: 10, ReqID: 1, Req: ownedPubResume(tok1, 600)})).Err)
		as := do(t, r, ClientRequest{Conn: 11, ReqID: 1, Req: ownedSubResume(tok2, 601)})
		err := replyOf(t, as).Err
		require.ErrorIs(t, err, parallax.ErrPermissionDenied)
		require.ErrorContains(t, err, "inode 601 is not the one its other end handed back (600)")
		require.Empty(t, actionsOf[KeepAdopted](as))
		require.Empty(t, r.Memory().Connections)
	})
	t.Run("data segment of another publisher (inode adopted)", func(t *testing.T) {
		r, tok1, tok2 := ownedResumeRouter(t)
		require.NoError(t, replyOf(t, do(t, r, ClientRequest{Conn: 10, ReqID: 1, Req: ownedPubResume(tok1, 600)})).Err)
		req := ResumeClient{OldClient: 2, Token: tok2, Pubs: []RestorePub{{ID: 4, Topic: "b", Type: ownedTyp,
			Data: []RestoreDataSeg{{Index: 0, ChunkSize: 4096, Count: 300, Bytes: 2 << 20, Inode: 500}}}}}
		err := replyOf(t, do(t, r, ClientRequest{Conn: 11, ReqID: 1, Req: req})).Err
		require.ErrorIs(t, err, parallax.ErrPermissionDenied)
		require.ErrorContains(t, err, "already adopted as the data segment 0 of publisher 3")
	})
	t.Run("connection of which it is no end", func(t *testing.T) {
		r, _, tok2 := ownedResumeRouter(t)
		req := ownedSubResume(tok2, 600)
		req.Subs = nil
		err := replyOf(t, do(t, r, ClientRequest{Conn: 11, ReqID: 1, Req: req})).Err
		require.ErrorIs(t, err, parallax.ErrPermissionDenied)
	})
	t.Run("publisher without segment 0", func(t *testing.T) {
		r, tok1, _ := ownedResumeRouter(t)
		req := ownedPubResume(tok1, 600)
		req.Pubs[0].Data[0].Index = 1
		err := replyOf(t, do(t, r, ClientRequest{Conn: 10, ReqID: 1, Req: req})).Err
		require.ErrorIs(t, err, parallax.ErrProtocol)
		require.Empty(t, r.Memory().Publishers)
	})
	t.Run("owned segments to a shared-model router", func(t *testing.T) {
		r := newTestRouter(t, nil, RouterOptions{})
		id1, tok1 := testIdentity(1, 100)
		r.Step(AdoptClients{IDs: []ClientID{1}, Identities: []ClientIdentity{id1}})
		do(t, r, ClientConnected{Conn: 10, PID: 100})
		err := replyOf(t, do(t, r, ClientRequest{Conn: 10, ReqID: 1, Req: ownedPubResume(tok1, 600)})).Err
		require.ErrorIs(t, err, parallax.ErrProtocol)
	})
}
