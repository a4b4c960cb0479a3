package shm_test

import (
	"context"
	"errors"
	"fmt"
	"os"
	"runtime"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/parallax-ipc/parallax"
	"github.com/parallax-ipc/parallax/mempool"
	"github.com/parallax-ipc/parallax/ringbuf"
)

// stressProducers is the number of producer processes; each owns one ring
// into the single consumer process, which sleeps on one notifier for both
// (a wait set).
const stressProducers = 2

// stressConfig sizes a stress run of about ops operations (loan, push, pop
// and release count one each). The pool holds exactly as many chunks as can
// be in flight — per producer one loaned (or just discarded) chunk plus a
// full ring, plus the one the consumer holds — so a leaked or doubly held
// chunk makes a Loan fail.
func stressConfig(policy ringbuf.Policy, ops int, slow bool) config {
	const capacity = 64
	// A message costs loan, push, pop and release; or, when discarded,
	// loan, push and the producer's release.
	opsPerMessage := 4
	if policy == ringbuf.DiscardOldest {
		opsPerMessage = 3
	}
	return config{
		Notifiers: 1,
		Rings:     stressProducers,
		Capacity:  capacity,
		ChunkSize: 128,
		Count:     stressProducers*(capacity+1) + 1,
		Policy:    int(policy),
		N:         ops / opsPerMessage / stressProducers,
		Slow:      slow,
	}
}

// TestMultiProcessBlockProducer runs two producer processes and one consumer
// process over BlockProducer rings: every message must arrive, in order,
// intact, exactly once, and every chunk must be free at the end.
func TestMultiProcessBlockProducer(t *testing.T) {
	t.Parallel()
	ops := 10_000_000
	if testing.Short() {
		ops = 400_000
	}
	runStress(t, stressConfig(ringbuf.BlockProducer, ops, false))
}

// TestMultiProcessDiscardOldest is the same over DiscardOldest rings with a
// deliberately slow consumer, which pops only from full rings: producers
// discard (and release) the oldest entries while the consumer pops
// concurrently, and each message must be either popped or discarded, once.
func TestMultiProcessDiscardOldest(t *testing.T) {
	t.Parallel()
	ops := 10_000_000
	if testing.Short() {
		ops = 300_000
	}
	runStress(t, stressConfig(ringbuf.DiscardOldest, ops, true))
}

func runStress(t *testing.T, c config) {
	d := mustDomain(t, "shm-stress", c)

	start := time.Now()
	cons := startChild(t, d, "consumer", "stress-consumer", true, c)
	prods := make([]*child, stressProducers)
	for i := range prods {
		pc := c
		pc.ID = i + 1
		prods[i] = startChild(t, d, fmt.Sprintf("producer%d", pc.ID), "stress-producer", false, pc)
	}
	waitChildren(t, d.abort, append([]*child{cons}, prods...)...)
	elapsed := time.Since(start)

	cr := cons.report(t)
	var wantFP, gotFP, pushes, discards, pops, exhausted uint64
	gotFP = cr["fp"]
	for i, p := range prods {
		origin := uint64(i + 1)
		pr := p.report(t)
		require.Equal(t, uint64(c.N), pr["pushes"], "producer %d pushes", origin)
		popsI := cr[fmt.Sprintf("pops%d", origin)]
		require.Equal(t, pr["pushes"], pr["discards"]+popsI,
			"producer %d: discards %d + pops %d != pushes %d", origin, pr["discards"], popsI, pr["pushes"])
		require.Equal(t, pr["discards"], d.rings[i].Dropped(), "ring %d dropped count", i)
		if ringbuf.Policy(c.Policy) == ringbuf.BlockProducer {
			require.Zero(t, pr["discards"], "a BlockProducer ring discarded")
		} else {
			require.NotZero(t, pr["discards"], "the slow consumer caused no discard")
		}
		for s := uint64(1); s <= uint64(c.N); s++ {
			wantFP += fingerprint(origin, s)
		}
		gotFP += pr["fp"]
		pushes += pr["pushes"]
		discards += pr["discards"]
		exhausted += pr["exhausted"]
		pops += popsI

		// The consumer drained every ring.
		require.Zero(t, d.rings[i].Len(), "ring %d not drained", i)
	}
	require.Equal(t, wantFP, gotFP, "popped and discarded messages are not exactly the sent ones")

	audit := d.pool.Audit()
	require.True(t, audit.AllFree(), "pool not all free: %v", audit)
	st := d.pool.Stats()
	require.Zero(t, st.InUse)
	require.Equal(t, pushes, st.Loans)
	require.Equal(t, exhausted, st.FailedLoans)
	require.LessOrEqual(t, st.HighWater, uint64(c.Count))

	ops := 2*pushes + 2*pops + discards // loan+push each; pop+release or discard-release
	ns := d.notifiers[0].Stats()
	t.Logf("%v: %d ops (%d pushes, %d pops, %d discards) by %d producers + 1 consumer in %v (%.2f Mops/s); pool high water %d/%d; %d failed (retried) loans; consumer sleeps %d, wakes %d",
		ringbuf.Policy(c.Policy), ops, pushes, pops, discards, stressProducers, elapsed.Round(time.Millisecond),
		float64(ops)/elapsed.Seconds()/1e6, st.HighWater, c.Count, exhausted, ns.Sleeps, ns.Wakes)
}

// stressProducerChild loans, fills, publishes and notifies c.N messages on
// ring c.ID-1, releasing whatever the ring discards. It prints
// "pushes=… discards=… fp=… exhausted=…" (fp: fingerprint sum of the
// discarded ones; exhausted: failed loan attempts, retried).
func stressProducerChild(args []string) int {
	c, err := parseConfig(args)
	if err == nil {
		var d *domain
		if d, err = openDomain(c, false); err == nil {
			err = produce(c, d)
			if cerr := d.Close(); err == nil {
				err = cerr
			}
		}
	}
	if err != nil {
		fmt.Fprintf(os.Stderr, "producer %d: %v\n", c.ID, err)
		return 1
	}
	return 0
}

func produce(c config, d *domain) error {
	origin := uint64(c.ID)
	ring, nt, pool := d.rings[c.ID-1], d.notifiers[0], d.pool
	ctx := context.Background()
	var discards, lastDiscard, fp, exhausted uint64
	for seq := uint64(1); seq <= uint64(c.N); seq++ {
		ref, err := pool.Loan(uint16(c.ID))
		if errors.Is(err, parallax.ErrPoolExhausted) {
			// The pool is sized for the worst case in flight, so a chunk
			// is free at every instant. Loan still fails now and then: its
			// single pass over a multi-word bitmap can miss a chunk freed
			// behind it while the other producer takes the one ahead of
			// it. Count those and retry; a leaked chunk shows in the
			// final audit, and a pool drained for good ends the retries.
			exhausted++
			deadline := time.Now().Add(10 * time.Second)
			for errors.Is(err, parallax.ErrPoolExhausted) && time.Now().Before(deadline) {
				runtime.Gosched()
				if ref, err = pool.Loan(uint16(c.ID)); err != nil {
					exhausted++
				}
			}
		}
		if err != nil {
			return fmt.Errorf("loan message %d: %w", seq, err)
		}
		buf, err := pool.Payload(ref)
		if err != nil {
			return errRef("loaned", ref, err)
		}
		n := lengthFor(c.ChunkSize, seq)
		fill(buf[:n], origin, seq)
		if err := pool.SetMeta(ref, metaFor(origin, seq, n)); err != nil {
			return errRef("loaned", ref, err)
		}
		old, err := ring.Push(ctx, ref)
		if err != nil {
			return fmt.Errorf("push message %d: %w", seq, err)
		}
		if old != parallax.NilRef {
			// Discarded: ours now, exactly once; check it is one of our
			// earlier messages, intact, then release it.
			s, err := verify(pool, old, origin)
			if err != nil {
				return errRef("discarded", old, err)
			}
			if s <= lastDiscard || s >= seq {
				return fmt.Errorf("discarded message %d after %d while pushing %d", s, lastDiscard, seq)
			}
			lastDiscard = s
			if err := release(pool, old); err != nil {
				return errRef("discarded", old, err)
			}
			discards++
			fp += fingerprint(origin, s)
		}
		if err := nt.Notify(); err != nil {
			return fmt.Errorf("notify: %w", err)
		}
	}
	// Close after the last push: the consumer drains once it sees it.
	if err := ring.Close(); err != nil {
		return err
	}
	if err := nt.Notify(); err != nil {
		return fmt.Errorf("notify: %w", err)
	}
	fmt.Printf("pushes=%d discards=%d fp=%d exhausted=%d\n", c.N, discards, fp, exhausted)
	return nil
}

// stressConsumerChild pops (tracked) from every ring, verifies header and
// payload, checks per-origin order and releases, sleeping on the notifier
// when there is nothing to do. With c.Slow it pops only from full (or
// closed) rings, so producers keep discarding. It prints
// "pops<origin>=… fp=…" once every ring is closed and drained.
func stressConsumerChild(args []string) int {
	c, err := parseConfig(args)
	if err == nil {
		var d *domain
		if d, err = openDomain(c, true); err == nil {
			err = consume(c, d)
			if cerr := d.Close(); err == nil {
				err = cerr
			}
		}
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "consumer:", err)
		return 1
	}
	return 0
}

func consume(c config, d *domain) error {
	block := ringbuf.Policy(c.Policy) == ringbuf.BlockProducer
	last := make([]uint64, len(d.rings))
	pops := make([]uint64, len(d.rings))
	var fp uint64
	ringReady := func(r *ringbuf.Ring) bool {
		n := r.Len()
		return n > 0 && (!c.Slow || n >= r.Cap() || r.Closed())
	}
	allClosed := func() bool {
		for _, r := range d.rings {
			if !r.Closed() {
				return false
			}
		}
		return true
	}
	ready := func() bool {
		for _, r := range d.rings {
			if ringReady(r) {
				return true
			}
		}
		return allClosed()
	}
	take := func(i int) (bool, error) {
		r := d.rings[i]
		ref, err := r.TryPop()
		if err == ringbuf.ErrEmpty {
			return false, nil
		}
		if err != nil {
			return false, err
		}
		origin := uint64(i + 1)
		seq, err := verify(d.pool, ref, origin)
		if err == nil && c.Slow {
			_, err = verify(d.pool, ref, origin) // deliberately slow
		}
		if err != nil {
			return false, errRef("popped", ref, err)
		}
		if block && seq != last[i]+1 || seq <= last[i] {
			return false, fmt.Errorf("ring %d: message %d after %d (lost, duplicated or reordered)", i, seq, last[i])
		}
		last[i] = seq
		if err := release(d.pool, ref); err != nil {
			return false, errRef("popped", ref, err)
		}
		pops[i]++
		fp += fingerprint(origin, seq)
		return true, nil
	}
	ctx, opts := context.Background(), waitOptions(c.Mode)
	for {
		progressed := false
		for i, r := range d.rings {
			if !ringReady(r) {
				continue
			}
			ok, err := take(i)
			if err != nil {
				return err
			}
			progressed = progressed || ok
		}
		if progressed {
			continue
		}
		if allClosed() {
			// Every producer closed its ring after its last push: what is
			// left now is all there will be.
			for i := range d.rings {
				for {
					ok, err := take(i)
					if err != nil {
						return err
					}
					if !ok {
						break
					}
				}
			}
			break
		}
		if err := d.notifiers[0].Wait(ctx, ready, opts); err != nil {
			return err
		}
	}
	for i, n := range pops {
		fmt.Printf("pops%d=%d ", i+1, n)
	}
	fmt.Printf("fp=%d\n", fp)
	return nil
}

// metaFor is the header of message (origin, seq) with n payload bytes.
func metaFor(origin, seq uint64, n int) mempool.Meta {
	return mempool.Meta{Length: uint64(n), Seq: seq, Timestamp: timestampFor(origin, seq), Origin: origin}
}

// verify checks every header field and the payload of a held chunk sent by
// origin and returns its sequence number.
func verify(pool *mempool.Pool, ref parallax.ChunkRef, origin uint64) (uint64, error) {
	if ref.Pool() != poolID {
		return 0, fmt.Errorf("pool %d, want %d", ref.Pool(), poolID)
	}
	m, err := pool.Meta(ref)
	if err != nil {
		return 0, err
	}
	if m.Origin != origin {
		return 0, fmt.Errorf("origin %d on ring of origin %d", m.Origin, origin)
	}
	if m.Seq == 0 {
		return 0, errors.New("sequence number 0")
	}
	if want := metaFor(origin, m.Seq, lengthFor(int(pool.Class().ChunkSize), m.Seq)); m != want {
		return 0, fmt.Errorf("header %+v, want %+v", m, want)
	}
	data, err := pool.Data(ref)
	if err != nil {
		return 0, err
	}
	if err := check(data, origin, m.Seq); err != nil {
		return 0, err
	}
	return m.Seq, nil
}

// release drops the only hold on ref, which must free the chunk.
func release(pool *mempool.Pool, ref parallax.ChunkRef) error {
	freed, err := pool.Release(ref)
	if err != nil {
		return err
	}
	if !freed {
		return errors.New("released but not freed: another holder exists")
	}
	return nil
}
