//go:build linux && parallax_countatomics

package bench_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/parallax-ipc/parallax/internal/atomiccount"
	"github.com/parallax-ipc/parallax/internal/routertest"
	"github.com/parallax-ipc/parallax/publisher"
	"github.com/parallax-ipc/parallax/subscriber"
)

// TestAtomicsPerMessage counts the shared-memory atomic operations of
// 1→1 messages in one process (publisher and subscriber of one topic, the
// owned model's defaults, discard-oldest, the subscriber never asleep):
// Loan, Publish, TryTake, Release, one message at a time. The expected
// figures are design §7.1's table as measured (docs/design/
// memory-ownership.md §7.1, §8.13). Run with -tags parallax_countatomics.
//
// Per message: Loan 0; Publish 5 (2 locked: data slot and tail stores;
// loads of the ring's closed word and own tail, the notifier's sleeping
// word) plus the drain every 64 publishes (ownedpub.DefaultDrainEvery) of
// 68 (1 locked: the return ring's head CAS; the rest loads, 64 of them
// the returned slots); TryTake 4 (1 locked: the head CAS); Release
// 5 (2 locked, the return push and notify as Publish's) plus a refresh of
// the return ring's head view every 128 releases (1 load).
func TestAtomicsPerMessage(t *testing.T) {
	srv := routertest.Start(t, "")
	ctx, cancel := context.WithTimeout(context.Background(), childTimeout)
	defer cancel()
	sub, err := subscriber.New(ctx, "atomics", subscriber.Options{Socket: srv.SocketPath(), QueueCapacity: 64})
	if err != nil {
		t.Fatal(err)
	}
	defer sub.Close()
	pub, err := publisher.New(ctx, "atomics", publisher.Options{Socket: srv.SocketPath()})
	if err != nil {
		t.Fatal(err)
	}
	defer pub.Close()
	if err := pub.WaitForSubscribers(ctx, 1); err != nil {
		t.Fatal(err)
	}
	if err := sub.WaitForPublishers(ctx, 1); err != nil {
		t.Fatal(err)
	}
	var stages [4]atomiccount.Counts // loan, publish, take, release
	mark := func(i int, since atomiccount.Counts) atomiccount.Counts {
		now := atomiccount.Snapshot()
		d := now.Sub(since)
		stages[i].Ops += d.Ops
		stages[i].Locked += d.Locked
		return now
	}
	cycle := func() {
		t0 := atomiccount.Snapshot()
		c, err := pub.Loan(64)
		if err != nil {
			t.Fatal(err)
		}
		t1 := mark(0, t0)
		fill(c.Bytes(), cmdData)
		if err := pub.Publish(c); err != nil {
			t.Fatal(err)
		}
		t2 := mark(1, t1)
		deadline := time.Now().Add(childTimeout)
		for {
			s, err := sub.TryTake()
			if errors.Is(err, subscriber.ErrNoData) && time.Now().Before(deadline) {
				continue
			}
			if err != nil {
				t.Fatal(err)
			}
			t3 := mark(2, t2)
			touch(s.Bytes())
			if err := s.Release(); err != nil {
				t.Fatal(err)
			}
			mark(3, t3)
			return
		}
	}
	for range 256 { // warm up: every chunk of the first segment used once
		cycle()
	}
	const n = 4096
	stages = [4]atomiccount.Counts{}
	before := atomiccount.Snapshot()
	for range n {
		cycle()
	}
	got := atomiccount.Snapshot().Sub(before)
	t.Logf("%d messages: %d shared-memory atomics (%.3f/msg), %d locked (%.3f/msg)",
		n, got.Ops, float64(got.Ops)/n, got.Locked, float64(got.Locked)/n)
	// Locked: a push's slot store is a release (plain) store, counted
	// as unlocked; its tail store is the seq-cst one (the Dekker with the
	// peer's sleeping flag).
	want := [4]atomiccount.Counts{
		{},
		{Ops: 5*n + 68*n/64, Locked: n + n/64},
		{Ops: 4 * n, Locked: n},
		{Ops: 5*n + n/128, Locked: n},
	}
	for i, name := range []string{"loan", "publish", "take", "release"} {
		t.Logf("%-8s %d (%d locked)", name, stages[i].Ops, stages[i].Locked)
		if stages[i] != want[i] {
			t.Errorf("%s: %d atomics (%d locked) in %d messages, want %d (%d locked)",
				name, stages[i].Ops, stages[i].Locked, n, want[i].Ops, want[i].Locked)
		}
	}
}
