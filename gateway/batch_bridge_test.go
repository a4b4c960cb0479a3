package gateway_test

import (
	"bytes"
	"context"
	"encoding/binary"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/stretchr/testify/require"

	"github.com/parallax-ipc/parallax/gateway"
	"github.com/parallax-ipc/parallax/publisher"
	"github.com/parallax-ipc/parallax/subscriber"
)

// TestImportBatches: an importer publishes every message of a batch
// locally, in order; a malformed batch from NATS is refused as a whole
// (counted once per message it claims, logged with what is wrong) and
// none of its messages is published.
func TestImportBatches(t *testing.T) {
	t.Parallel()
	ns := startNATS(t, -1, 0)
	rb := newRouter(t)
	topic := []gateway.Topic{{Name: "b", Type: &gateway.Type{}}}
	gb, logs, _ := startGateway(t, gateway.Options{NATSURL: ns.ClientURL(), Socket: rb.cfg.Socket, Import: topic})
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	sub, err := subscriber.New(ctx, "b", subscriber.Options{Socket: rb.cfg.Socket, QueueCapacity: 16})
	require.NoError(t, err)
	defer sub.Close()
	require.NoError(t, sub.WaitForPublishers(ctx, 1))
	nc, err := nats.Connect(ns.ClientURL())
	require.NoError(t, err)
	defer nc.Close()
	m := gateway.Meta{Seq: 1, Publisher: 1, Gateway: "peer"}
	bad := gateway.AppendBatch(nil, m, []byte("x1"), []byte("x2"))
	binary.LittleEndian.PutUint32(bad[36+len("peer")+20:], 1<<20) // first record's length beyond the message
	require.NoError(t, nc.Publish(gateway.DefaultPrefix+"b", bad))
	require.NoError(t, nc.Publish(gateway.DefaultPrefix+"b", gateway.AppendBatch(nil, m, []byte("m1"), []byte("m2"), []byte("m3"))))
	require.NoError(t, nc.Flush())
	for _, want := range []string{"m1", "m2", "m3"} {
		s, err := sub.TakeTimeout(20 * time.Second)
		require.NoError(t, err, "B %v", gb.Stats())
		require.Equal(t, want, string(s.Bytes()))
		require.NoError(t, s.Release())
	}
	_, err = sub.TryTake()
	require.ErrorIs(t, err, subscriber.ErrNoData, "nothing else delivered")
	eventually(t, "the importer counting", func() bool { return gb.Stats().Imported == 3 })
	st := gb.Stats()
	require.Equal(t, uint64(1), st.Refused, "%v", st)
	require.Equal(t, uint64(0), st.Dropped+st.Gaps, "%v", st)
	require.Contains(t, logs.String(), "batch record 0 of 2: payload of 1048576 bytes")
}

// TestExportBatches: what an exporter publishes decodes with
// DecodeMessages to every sample, in order, whether it batched them or
// not; a sample alone in the queue, and with Unbatched every sample, is a
// plain message.
func TestExportBatches(t *testing.T) {
	t.Parallel()
	for _, unbatched := range []bool{false, true} {
		name := "batched"
		if unbatched {
			name = "unbatched"
		}
		t.Run(name, func(t *testing.T) { t.Parallel(); exportBatches(t, unbatched) })
	}
}

func exportBatches(t *testing.T, unbatched bool) {
	const n = 2000
	ns := startNATS(t, -1, 0)
	ra := newRouter(t)
	nc, err := nats.Connect(ns.ClientURL())
	require.NoError(t, err)
	defer nc.Close()
	var mu sync.Mutex
	var got []uint64
	var natsMsgs int
	var decodeErr error
	_, err = nc.Subscribe(gateway.DefaultPrefix+"e", func(msg *nats.Msg) {
		mu.Lock()
		defer mu.Unlock()
		natsMsgs++
		if unbatched || natsMsgs == 1 { // the first sample was sent alone
			if _, _, err := gateway.DecodeMessage(msg.Data); err != nil && decodeErr == nil {
				decodeErr = err
			}
		}
		if err := gateway.DecodeMessages(msg.Data, func(_ gateway.Meta, p []byte) {
			seq := binary.LittleEndian.Uint64(p)
			if !bytes.Equal(p, payload(seq, 512)) && decodeErr == nil {
				decodeErr = fmt.Errorf("payload of sample %d corrupted", seq)
			}
			got = append(got, seq)
		}); err != nil && decodeErr == nil {
			decodeErr = err
		}
	})
	require.NoError(t, err)
	require.NoError(t, nc.Flush())
	topic := []gateway.Topic{{Name: "e", Type: &gateway.Type{}}}
	ga, _, _ := startGateway(t, gateway.Options{NATSURL: ns.ClientURL(), Socket: ra.cfg.Socket, Export: topic,
		Policy: gateway.PolicyBlock, QueueCapacity: 256, Unbatched: unbatched})
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	pub, err := publisher.New(ctx, "e", publisher.Options{Socket: ra.cfg.Socket, BlockTimeout: time.Minute})
	require.NoError(t, err)
	defer pub.Close()
	require.NoError(t, pub.WaitForSubscribers(ctx, 1))
	// A lone sample goes out as a plain message (DecodeMessage reads it).
	require.NoError(t, pub.Send(payload(1, 512)))
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("publisher published %d, dropped %d; gateway %v", pub.Published(), pub.Dropped(), ga.Stats())
		}
	})
	eventually(t, "the first sample on NATS", func() bool { mu.Lock(); defer mu.Unlock(); return len(got) == 1 || decodeErr != nil })
	for i := uint64(2); i <= n; i++ {
		require.NoError(t, pub.Send(payload(i, 512)))
	}
	eventually(t, "all samples on NATS", func() bool { mu.Lock(); defer mu.Unlock(); return len(got) >= n || decodeErr != nil })
	mu.Lock()
	defer mu.Unlock()
	require.NoError(t, decodeErr)
	require.Len(t, got, n)
	for k, seq := range got {
		require.Equal(t, uint64(k+1), seq, "sample %d", k)
	}
	if unbatched {
		require.Equal(t, n, natsMsgs)
	}
	t.Logf("%d samples in %d NATS messages", n, natsMsgs)
}
