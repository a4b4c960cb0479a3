package gateway_test

import (
	"context"
	"encoding/binary"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/stretchr/testify/require"

	"github.com/parallax-ipc/parallax/gateway"
	"github.com/parallax-ipc/parallax/subscriber"
)

// TestImportLargeBatch: a NATS batch of more records than an importer
// publishes locally at once (it stages at most 64 loaned chunks) arrives
// whole and in order, each sample with its own local sequence number, and
// is counted once per record.
func TestImportLargeBatch(t *testing.T) {
	t.Parallel()
	forImportPaths(t, testImportLargeBatch)
}

func testImportLargeBatch(t *testing.T) {
	ns := startNATS(t, -1, 0)
	rb := newRouter(t)
	topic := []gateway.Topic{{Name: "lb", Type: &gateway.Type{}}}
	gb, _, _ := startGateway(t, gateway.Options{NATSURL: ns.ClientURL(), Socket: rb.cfg.Socket, Import: topic})
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	sub, err := subscriber.New(ctx, "lb", subscriber.Options{Socket: rb.cfg.Socket, QueueCapacity: 256})
	require.NoError(t, err)
	defer sub.Close()
	require.NoError(t, sub.WaitForPublishers(ctx, 1))
	nc, err := nats.Connect(ns.ClientURL())
	require.NoError(t, err)
	defer nc.Close()
	const n = 150
	payloads := make([][]byte, n)
	for i := range payloads {
		payloads[i] = binary.LittleEndian.AppendUint64(nil, uint64(i))
	}
	m := gateway.Meta{Seq: 1, Publisher: 1, Gateway: "peer"}
	require.NoError(t, nc.Publish(gateway.DefaultPrefix+"lb", gateway.AppendBatch(nil, m, payloads...)))
	require.NoError(t, nc.Flush())
	var seq uint64
	for i := range n {
		s, err := sub.TakeTimeout(20 * time.Second)
		require.NoError(t, err, "take %d: %v", i, gb.Stats())
		require.Equal(t, uint64(i), binary.LittleEndian.Uint64(s.Bytes()))
		if i > 0 {
			require.Equal(t, seq+1, s.Header().Seq)
		}
		seq = s.Header().Seq
		require.NoError(t, s.Release())
	}
	eventually(t, "the importer counting", func() bool { return gb.Stats().Imported == n })
	st := gb.Stats()
	require.Equal(t, uint64(0), st.Dropped+st.Refused+st.Gaps, "%v", st)
}
