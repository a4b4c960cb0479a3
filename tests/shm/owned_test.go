package shm_test

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"syscall"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/parallax-ipc/parallax"
	"github.com/parallax-ipc/parallax/dataseg"
	"github.com/parallax-ipc/parallax/internal/owner"
	"github.com/parallax-ipc/parallax/internal/testutil"
	"github.com/parallax-ipc/parallax/ringbuf"
	"github.com/parallax-ipc/parallax/segment"
)

// ownedChild is a child of the owned tests. Its exit is collected by a
// goroutine started with it, which calls onExit (if set) first, so a
// publisher blocked on a dead subscriber is released.
type ownedChild struct {
	child
	done  chan error
	stdin io.WriteCloser
}

// startOwned starts role with files as fds 3, 4, ... (it closes them once
// the child has its copies) and c as its argument.
func startOwned(t testing.TB, name, role string, files []*os.File, c ownedConfig, withStdin bool, onExit func()) *ownedChild {
	t.Helper()
	ch := &ownedChild{child: child{name: name}, done: make(chan error, 1)}
	ch.cmd = testutil.ChildCommand(t, role, files, c.args()...)
	ch.cmd.Stdout = &ch.out
	dieWithParent(ch.cmd)
	if withStdin {
		w, err := ch.cmd.StdinPipe()
		require.NoError(t, err)
		ch.stdin = w
	}
	err := ch.cmd.Start()
	for _, f := range files {
		f.Close()
	}
	require.NoError(t, err, "start %s", name)
	go func() {
		err := ch.cmd.Wait()
		if onExit != nil {
			onExit()
		}
		ch.done <- err
	}()
	t.Cleanup(func() {
		select {
		case err := <-ch.done:
			ch.done <- err
		default: // the test failed before the child ended
			_ = ch.cmd.Process.Kill()
			ch.done <- <-ch.done
		}
	})
	return ch
}

// wait returns the child's exit error.
func (ch *ownedChild) wait() error {
	err := <-ch.done
	ch.done <- err
	return err
}

// abortConn closes pc's rings and return wake, so a publisher pushing to or
// waiting on a dead subscriber returns.
func abortConn(pc *pubConn) func() {
	return func() {
		_ = pc.data.Close()
		_ = pc.c.ReturnWake().Close()
	}
}

// mustOwnedPub attaches a publisher to the router's data segment dm.
func mustOwnedPub(t testing.TB, dm *segment.Mapped, d dataseg.Desc, mode string, payload int) *ownedPub {
	t.Helper()
	p, err := newOwnedPub(grant(t, dm, false), d, mode, payload)
	require.NoError(t, err)
	t.Cleanup(func() { require.NoError(t, p.Close()) })
	return p
}

func mustConn(t testing.TB, p *ownedPub, cm *segment.Mapped, cd ringbuf.ConnDesc) *pubConn {
	t.Helper()
	pc, err := p.addConn(grant(t, cm, false), cd)
	require.NoError(t, err)
	return pc
}

// closeConn ends the stream on pc: the subscriber drains and exits.
func closeConn(pc *pubConn) {
	_ = pc.data.Close()
	_ = pc.wake.Notify()
}

// requireRouterSeg checks what the router promises about a segment: mode
// 0600 and sealed against shrinking and growing.
func requireRouterSeg(t *testing.T, m *segment.Mapped) {
	t.Helper()
	st, err := m.File().Stat()
	require.NoError(t, err)
	require.Equal(t, os.FileMode(0o600), st.Mode().Perm())
	seals, err := m.Seals()
	require.NoError(t, err)
	require.Equal(t, segment.SealMask, seals&segment.SealMask)
}

// TestOwnedStream streams N messages from a publisher that owns its data
// segment and Tracker to a subscriber process that maps the segment
// read-only, validates every ref and returns it through the return ring.
// Every message arrives once, in order, with its payload and header, and
// at the end every chunk is free again by the publisher's own count.
func TestOwnedStream(t *testing.T) {
	t.Parallel()
	n := 200_000
	if testing.Short() {
		n = 20_000
	}
	const payload = 256
	d, cd := ownedSizes(1, 1, payload, 64, 1, ringbuf.BlockProducer)
	dm, cm := routerDataSeg(t, d), routerConnSeg(t, cd)
	requireRouterSeg(t, dm)
	requireRouterSeg(t, cm)
	pub := mustOwnedPub(t, dm, d, "default", payload)
	pub.strict = true
	pc := mustConn(t, pub, cm, cd)
	sink := startOwned(t, "sink", "owned-sink", []*os.File{grant(t, dm, true), grant(t, cm, false)},
		ownedConfig{Data: d, Conn: cd, Mode: "default", Payload: payload}, false, abortConn(pc))
	for seq := uint64(1); seq <= uint64(n); seq++ {
		require.NoError(t, pub.send(seq))
		require.NoError(t, pc.err)
	}
	closeConn(pc)
	require.NoError(t, sink.wait())
	pub.drainAll()
	require.NoError(t, pc.err)
	require.NoError(t, pub.violation)
	r := sink.report(t)
	require.Equal(t, uint64(n), r["received"])
	require.Equal(t, uint64(n), r["last"])
	st := pub.tr.Stats()
	require.Zero(t, st.InUse, "%+v", st)
	require.Zero(t, st.Units, "%+v", st)
	require.Equal(t, st.Chunks, st.Free, "%+v", st)
	require.Equal(t, uint64(n), st.Returned, "%+v", st)
	require.Zero(t, st.BadReturns, "%+v", st)
	t.Logf("stats %+v", st)
}

// TestOwnedKillConsumer SIGKILLs a streaming subscriber at a random point,
// again and again on fresh connections of one publisher, while an idle
// process keeps the data segment mapped. After each kill the publisher
// reclaims the connection from its own bits alone, and its Tracker has
// nothing in use: exact, at any instant, with another process attached.
func TestOwnedKillConsumer(t *testing.T) {
	t.Parallel()
	rng := testutil.Rand(t)
	kills, maxMsgs := 8, 20_000
	if testing.Short() {
		kills, maxMsgs = 3, 5_000
	}
	const payload = 128
	d, _ := ownedSizes(1, 0, payload, 16, 1, ringbuf.BlockProducer)
	dm := routerDataSeg(t, d)
	pub := mustOwnedPub(t, dm, d, "default", payload)
	pub.strict = true
	idle := startOwned(t, "idle", "owned-idle", []*os.File{grant(t, dm, true)}, ownedConfig{Data: d}, true, nil)

	var seq uint64
	for i := range kills {
		policy := []ringbuf.Policy{ringbuf.BlockProducer, ringbuf.DiscardOldest}[i%2]
		_, cd := ownedSizes(1, uint32(i+1), payload, 16, 1, policy)
		cm := routerConnSeg(t, cd)
		pc := mustConn(t, pub, cm, cd)
		sink := startOwned(t, fmt.Sprintf("sink%d", i), "owned-sink", []*os.File{grant(t, dm, true), grant(t, cm, false)},
			ownedConfig{Data: d, Conn: cd, Mode: "default", Payload: payload}, false, abortConn(pc))
		k := 1 + rng.IntN(maxMsgs)
		for range k {
			seq++
			require.NoError(t, pub.send(seq))
			require.NoError(t, pc.err, "connection %d", cd.ConnID)
		}
		require.NoError(t, sink.cmd.Process.Signal(syscall.SIGKILL))
		err := sink.wait()
		var ee *exec.ExitError
		require.ErrorAs(t, err, &ee, "sink %d must die by the kill", i)
		ws, ok := ee.Sys().(syscall.WaitStatus)
		require.True(t, ok && ws.Signaled() && ws.Signal() == syscall.SIGKILL, "sink %d: %v", i, err)

		// The router reports the connection gone; the publisher takes
		// back everything outstanding on it, whatever the subscriber was
		// doing when it died.
		before := pub.tr.Stats()
		outstanding := pc.ct.Outstanding()
		pub.tr.CloseConn(pc.ct)
		reclaimed := pub.tr.ReclaimConn(pc.ct)
		st := pub.tr.Stats()
		t.Logf("kill %d (%v) after %d messages: outstanding %d, reclaimed %d, stats %+v", i, policy, k, outstanding, reclaimed, st)
		require.Equal(t, outstanding, reclaimed)
		require.Equal(t, before.Outstanding, reclaimed)
		require.Zero(t, st.Loans)
		require.Zero(t, st.InUse, "in use after reclaim must equal loans held (0): %+v", st)
		require.Zero(t, st.Units, "%+v", st)
		require.Equal(t, st.Chunks, st.Free, "%+v", st)
		require.NoError(t, pub.violation)
		pub.conns = pub.conns[:0]
		require.NoError(t, pc.mapped.Close())
	}

	// The idle client was attached (and mapped the segment) throughout.
	maps, err := os.ReadFile(fmt.Sprintf("/proc/%d/maps", idle.cmd.Process.Pid))
	require.NoError(t, err)
	require.True(t, bytes.Contains(maps, []byte(fmt.Sprintf("plx-p%d.%d", d.PubID, d.Index))), "idle client no longer maps the data segment")
	require.NoError(t, idle.stdin.Close())
	require.NoError(t, idle.wait())
	require.Equal(t, uint64(1), idle.report(t)["attached"])
}

// TestOwnedForgedReturns runs an honest and a hostile subscriber on two
// connections of one publisher. The hostile one returns a wrong generation,
// garbage, a double return and refs of chunks delivered only on the other
// connection. The publisher refuses each (an error for that connection,
// accounting unchanged: nothing freed early), stops delivering to it, and
// the honest connection streams every message intact to the end.
func TestOwnedForgedReturns(t *testing.T) {
	t.Parallel()
	n := 100_000
	if testing.Short() {
		n = 10_000
	}
	const payload = 128
	d, hcd := ownedSizes(1, 1, payload, 16, 2, ringbuf.BlockProducer)
	_, xcd := ownedSizes(1, 2, payload, 16, 2, ringbuf.BlockProducer)
	dm := routerDataSeg(t, d)
	hm, xm := routerConnSeg(t, hcd), routerConnSeg(t, xcd)
	pub := mustOwnedPub(t, dm, d, "default", payload)
	pub.strict = true
	honest := mustConn(t, pub, hm, hcd)
	hostile := mustConn(t, pub, xm, xcd)
	// Even messages go to the honest subscriber only, so chunks exist that
	// the hostile one never received.
	pub.to = func(pc *pubConn, seq uint64) bool { return pc == honest || seq%2 == 1 }
	hs := startOwned(t, "honest", "owned-sink", []*os.File{grant(t, dm, true), grant(t, hm, false)},
		ownedConfig{Data: d, Conn: hcd, Mode: "default", Payload: payload}, false, abortConn(honest))
	xs := startOwned(t, "hostile", "owned-sink", []*os.File{grant(t, dm, true), grant(t, xm, false)},
		ownedConfig{Data: d, Conn: xcd, Mode: "default", Payload: payload, Hostile: true}, false, abortConn(hostile))

	cut := false
	for seq := uint64(1); seq <= uint64(n); seq++ {
		require.NoError(t, pub.send(seq))
		require.NoError(t, honest.err)
		if hostile.err != nil && !cut {
			// Reported to the router, which cuts the connection.
			closeConn(hostile)
			cut = true
		}
	}
	require.True(t, cut, "the hostile connection was never refused")
	closeConn(honest)
	require.NoError(t, hs.wait())
	require.NoError(t, xs.wait())
	r := hs.report(t)
	require.Equal(t, uint64(n), r["received"])
	require.Equal(t, uint64(n), r["last"])

	var re *owner.ReturnError
	require.ErrorAs(t, hostile.err, &re)
	require.ErrorIs(t, hostile.err, parallax.ErrInvalidRef)
	require.Equal(t, xcd.ConnID, re.Conn)
	require.GreaterOrEqual(t, hostile.ct.BadReturns(), uint64(3), "wrong generation, garbage and double return")
	require.Zero(t, honest.ct.BadReturns())
	require.NoError(t, pub.violation)

	// The hostile subscriber is gone: reclaim it; drain the honest one.
	pub.tr.ReclaimConn(hostile.ct)
	pub.drainAll()
	require.NoError(t, honest.err)
	st := pub.tr.Stats()
	require.Zero(t, st.InUse, "%+v", st)
	require.Zero(t, st.Units, "%+v", st)
	t.Logf("hostile: %v (%d refused); stats %+v", hostile.err, hostile.ct.BadReturns(), st)
	if errors.Is(hostile.err, parallax.ErrStaleRef) {
		t.Log("first refusal was the wrong generation")
	}
}
