package core

import (
	"testing"

	"github.com/stretchr/testify/require"
)

// TestAdoptIDFloor: an adopting router hands out publisher, subscriber
// and connection ids above the previous router's marks (AdoptClients
// Floor), and IDMarks reports them for its own successor.
func TestAdoptIDFloor(t *testing.T) {
	t.Parallel()
	r := newTestRouter(t, func(c *Rules) { c.Memory.Hugepages = HugeNever }, RouterOptions{Sizes: testSizes})
	id1, _ := testIdentity(1, 100)
	floor := IDMarks{Pub: 10, Sub: 20, Link: 30}
	r.Step(AdoptClients{IDs: []ClientID{1}, Identities: []ClientIdentity{id1}, Floor: floor})
	r.Ready()
	require.Equal(t, floor, r.IDMarks())
	do(t, r, ClientConnected{Conn: 5, PID: 200})
	as := do(t, r, ClientRequest{Conn: 5, ReqID: 1, Req: CreateSubscriber{Topic: "a", Type: typT}})
	sub := replyOf(t, as).Result.(SubscriberCreated).Sub
	pub := createPub(t, r, 5, KindTopic, "a")
	require.Equal(t, SubID(21), sub)
	require.Equal(t, PubID(11), pub)
	require.Equal(t, IDMarks{Pub: 11, Sub: 21, Link: 31}, r.IDMarks(), "the connection of the two got id 31")
}
