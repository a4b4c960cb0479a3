package elements_test

import (
	"context"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/parallax-ipc/parallax/internal/routertest"
	"github.com/parallax-ipc/parallax/pipeline"
	"github.com/parallax-ipc/parallax/pipeline/elements"
	"github.com/parallax-ipc/parallax/subscriber"
)

// A slow downstream stalls an ipcsink without polling and without loss
// (owned model): a block-producer subscriber that does not take makes
// Publish wait, upstream's allocations then reach MaxLoans and wait in
// Publisher.LoanWait (one loan attempt each, however long the stall)
// instead of retrying; once the subscriber takes, every buffer arrives in
// order.
func TestIPCSinkSlowDownstreamWaits(t *testing.T) {
	t.Parallel()
	srv := routertest.Start(t, routertest.Owned)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	const n, qcap, maxLoans = 40, 2, 2
	sub, err := subscriber.New(ctx, "slow", subscriber.Options{Socket: srv.SocketPath(), QueueCapacity: qcap, Policy: subscriber.BlockProducer})
	require.NoError(t, err)
	defer sub.Close()

	sink := &elements.IPCSink{Topic: "slow", Socket: srv.SocketPath(), WaitSubscribers: 1, MaxLoans: maxLoans, MaxPayload: 1024, BlockTimeout: time.Minute}
	var tx pipeline.Graph
	require.NoError(t, tx.Add("src", &elements.TestSrc{Size: 1000, NumBuffers: n, Pattern: elements.PatternCounter}))
	require.NoError(t, tx.Add("sink", sink))
	require.NoError(t, tx.Chain("src", "sink"))
	txp, err := pipeline.New(&tx, pipeline.Options{})
	require.NoError(t, err)
	require.NoError(t, txp.Start(ctx)) // the sink's publisher exists from here
	pub := sink.Publisher()

	// The stall: qcap samples queued, one Publish waiting for room, and
	// every loan out with one more allocation waiting for a loan to end:
	// published + maxLoans + 1 attempts.
	deadline := time.Now().Add(30 * time.Second)
	tick := time.NewTicker(time.Millisecond)
	defer tick.Stop()
	for {
		st := sink.Stats()
		ps := pub.Stats()
		attempts := elements.IPCSinkLoanAttempts(sink)
		if st.Published == qcap && ps.Memory.Loans == maxLoans && attempts >= qcap+maxLoans+1 {
			break
		}
		require.True(t, time.Now().Before(deadline), "the sink never stalled: %+v, %d loan attempts, publisher %+v", st, attempts, ps)
		<-tick.C
	}

	for seq := uint64(1); seq <= n; seq++ {
		s, err := sub.Take(ctx)
		require.NoError(t, err)
		require.Equal(t, seq, s.Header().Seq, "in order, none lost")
		require.NoError(t, s.Release())
	}
	require.NoError(t, txp.Wait())
	require.Equal(t, uint64(n), sink.Stats().Published)
	require.Zero(t, sink.Stats().Dropped)
	require.Equal(t, uint64(n), elements.IPCSinkLoanAttempts(sink), "one loan attempt per buffer: allocations waited, no retries")
}
