//go:build integration

package integration

import (
	"bufio"
	"context"
	"encoding/binary"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/parallax-ipc/parallax"
	"github.com/parallax-ipc/parallax/publisher"
	"github.com/parallax-ipc/parallax/subscriber"
)

// Router restart: SIGKILL the router while a stream runs; the stream keeps
// flowing without a router; a new router of the domain adopts the segments,
// the clients resume, a new subscriber joins the old publisher, and at the
// end every pool is free.

func init() {
	childRoles["rspub"] = restartPubMain
	childRoles["rssub"] = restartSubMain
}

// restartPubMain publishes seq-numbered 256 B samples on "rs" until a
// "stop" line, then prints "published <n>" and closes at stdin EOF.
func restartPubMain(args []string) int {
	fs := flag.NewFlagSet("rspub", flag.ContinueOnError)
	socket := fs.String("socket", "", "")
	if fs.Parse(args) != nil {
		return 2
	}
	pub, err := publisher.New(context.Background(), "rs", publisher.Options{Socket: *socket, History: 8, BlockTimeout: time.Minute})
	if err != nil {
		return childFail("rspub", "%v", err)
	}
	in := bufio.NewScanner(os.Stdin)
	stop := make(chan struct{})
	go func() { in.Scan(); close(stop) }()
	fmt.Println("ready")
	var seq uint64
loop:
	for {
		select {
		case <-stop:
			break loop
		default:
		}
		c, err := pub.Loan(256)
		if errors.Is(err, parallax.ErrPoolExhausted) {
			time.Sleep(time.Millisecond)
			continue
		}
		if err != nil {
			return childFail("rspub", "loan: %v", err)
		}
		seq++
		binary.LittleEndian.PutUint64(c.Bytes(), seq)
		for i := 8; i < 256; i++ {
			c.Bytes()[i] = byte(seq) ^ byte(i)
		}
		if err := pub.Publish(c); err != nil {
			return childFail("rspub", "publish %d: %v", seq, err)
		}
		if seq%50 == 0 {
			time.Sleep(time.Millisecond)
		}
	}
	fmt.Printf("published %d\n", seq)
	// Each further line asks for the owned memory stats ("mem ..." as the
	// pub role prints them; zeros in the shared model); EOF ends it.
	for in.Scan() {
		st := pub.Stats()
		m := st.Memory
		fmt.Printf("mem %d %d %d %d %d %d %d\n", m.Chunks, m.Free, m.InUse, m.Outstanding, st.Subscribers, m.Reclaimed, m.Loans)
	}
	_, _ = io.Copy(io.Discard, os.Stdin)
	if err := pub.Close(); err != nil {
		return childFail("rspub", "close: %v", err)
	}
	return 0
}

// restartSubMain takes "rs" samples, checking order and content, prints
// "progress <n>" every 500, and on "stop <last>" reads until seq <last>,
// With -hold K it keeps its first K samples, prints "holding K", and on a
// "release" line checks that their content is intact, releases them and
// prints "released <bad>".
// prints "done <n> <first> <bad> <stale>" and closes at stdin EOF. A take
// that fails on a ref naming no held chunk (stale, invalid, not held) is
// counted in <stale> with -count-stale, and fails the child without it.
func restartSubMain(args []string) int {
	fs := flag.NewFlagSet("rssub", flag.ContinueOnError)
	socket := fs.String("socket", "", "")
	countStale := fs.Bool("count-stale", false, "")
	hold := fs.Int("hold", 0, "")
	if fs.Parse(args) != nil {
		return 2
	}
	var held []subscriber.Sample
	release := make(chan struct{})
	sub, err := subscriber.New(context.Background(), "rs", subscriber.Options{Socket: *socket, QueueCapacity: 64, Policy: subscriber.BlockProducer})
	if err != nil {
		return childFail("rssub", "%v", err)
	}
	var last, first, n, bad, stale uint64
	var target sync.Map
	in := bufio.NewScanner(os.Stdin)
	eof := make(chan struct{})
	go func() {
		defer close(eof)
		for in.Scan() {
			var t uint64
			if _, err := fmt.Sscanf(in.Text(), "stop %d", &t); err == nil {
				target.Store("t", t)
			}
			if in.Text() == "release" {
				close(release)
			}
		}
	}()
	fmt.Println("ready")
	for {
		if t, ok := target.Load("t"); ok && last >= t.(uint64) {
			break
		}
		select {
		case <-release:
			fmt.Printf("released %d\n", releaseHeld(held))
			held, release = nil, nil
		default:
		}
		s, err := sub.TakeTimeout(100 * time.Millisecond)
		if errors.Is(err, parallax.ErrTimeout) {
			continue
		}
		if *countStale && (errors.Is(err, parallax.ErrStaleRef) || errors.Is(err, parallax.ErrInvalidRef) || errors.Is(err, parallax.ErrNotHeld)) {
			stale++
			continue
		}
		if err != nil {
			return childFail("rssub", "take after %d: %v", n, err)
		}
		b := s.Bytes()
		seq := binary.LittleEndian.Uint64(b)
		ok := len(b) == 256 && (last == 0 || seq == last+1)
		for i := 8; ok && i < 256; i++ {
			ok = b[i] == byte(seq)^byte(i)
		}
		if !ok {
			bad++
		}
		if first == 0 {
			first = seq
		}
		last = seq
		n++
		if len(held) < *hold && release != nil {
			if held = append(held, s); len(held) == *hold {
				fmt.Printf("holding %d\n", len(held))
			}
		} else {
			_ = s.Release()
		}
		if n%500 == 0 {
			fmt.Printf("progress %d\n", n)
		}
	}
	fmt.Printf("done %d %d %d %d\n", n, first, bad, stale)
	<-eof // the subscriber stays until stdin EOF, as documented
	if err := sub.Close(); err != nil {
		return childFail("rssub", "close: %v", err)
	}
	return 0
}

// releaseHeld checks that each held sample still has its content, releases
// it and returns how many did not (or failed to release).
func releaseHeld(held []subscriber.Sample) int {
	bad := 0
	for i := range held {
		s := &held[i]
		b := s.Bytes()
		seq := binary.LittleEndian.Uint64(b)
		ok := len(b) == 256
		for i := 8; ok && i < 256; i++ {
			ok = b[i] == byte(seq)^byte(i)
		}
		if !ok || s.Release() != nil {
			bad++
		}
	}
	return bad
}

// TestRouterRestart runs in both memory models. In the owned one the
// clients hand their segments back to the new router (design §4.3): the
// first subscriber holds 10 samples across the restart and releases them
// afterwards, intact; the publisher's own accounting is exact at the end.
func TestRouterRestart(t *testing.T) {
	if *noDaemon {
		t.Skip("needs the parallax-roudi binary (not with -parallax.no-daemon)")
	}
	for _, m := range []struct{ name, cfg string }{{"owned", ownedConfig}} {
		t.Run("model="+m.name, func(t *testing.T) {
			t.Parallel()
			testRouterRestart(t, m.cfg, m.name == "owned")
		})
	}
}

func testRouterRestart(t *testing.T, cfg string, owned bool) {
	const hold = 10
	dir, cfgPath, sock, domain := restartFilesWith(t, "rs", cfg)

	// Router 1: the real binary, to be SIGKILLed.
	r1 := startKillableRouter(t, cfgPath, domain, sock, "-runtime-dir", dir)

	sub1 := spawn(t, "sub1", "rssub", "-socket", sock, "-hold", strconv.Itoa(hold))
	sub1.expect("ready")
	pub := spawn(t, "pub", "rspub", "-socket", sock)
	pub.expect("ready")
	sub1.expect("holding")
	sub1.expect("progress")

	// Kill the router in the middle of the stream.
	killRouter(t, r1)
	// No router: the stream keeps flowing.
	sub1.expect("progress")
	sub1.expect("progress")

	// Router 2, in this process (so the test can audit its pools), on the
	// same domain and socket: it adopts the survivors' segments.
	srv, ctx := startSuccessorWith(t, cfg, domain, sock, dir, 2*time.Second)
	readyAt := time.Now()
	require.True(t, srv.Adopted(), "the new router must adopt the surviving segments")

	// Both clients resume: the registry has the publisher, the subscriber
	// and their connection again.
	waitCtx, waitCancel := context.WithTimeout(ctx, 30*time.Second)
	defer waitCancel()
	for {
		snap, err := srv.Snapshot(waitCtx)
		require.NoError(t, err)
		if len(snap.Clients) == 2 && len(snap.Connections) == 1 {
			break
		}
		select {
		case <-waitCtx.Done():
			t.Fatalf("clients did not resume: %v", snap)
		case <-time.After(5 * time.Millisecond):
		}
	}
	t.Logf("clients resumed %v after the new router's ready line", time.Since(readyAt))

	// The samples held across the restart are intact and go back to their
	// publisher.
	sub1.send("release")
	require.Equal(t, "0", sub1.expect("released ")[0], "samples held across the restart changed")

	// A new subscriber joins the old publisher.
	sub2 := spawn(t, "sub2", "rssub", "-socket", sock)
	sub2.expect("ready")
	sub2.expect("progress")

	pub.send("stop")
	n := pub.expect("published ")
	last := atoi(t, n[0])
	for _, s := range []*proc{sub1, sub2} {
		s.send(fmt.Sprintf("stop %d", last))
		f := s.expect("done ")
		got, first := atoi(t, f[0]), atoi(t, f[1])
		require.Equal(t, "0", f[2], "%s saw corrupted or reordered samples", s.name)
		require.Equal(t, last-first+1, got, "%s lost or duplicated samples (first %d, last %d)", s.name, first, last)
		if s == sub1 {
			require.Equal(t, uint64(1), first, "sub1 was there from the start")
		}
		t.Logf("%s received %d samples (%d..%d), 0 bad", s.name, got, first, last)
	}
	if owned {
		// Exact: with every sample taken and released, the publisher's
		// chunks in use are its history (8), none outstanding, no loan.
		ms := pub.memStats(t)
		require.Equal(t, memStats{Chunks: ms.Chunks, Free: ms.Chunks - 8, InUse: 8, Subscribers: 2}, ms, "publisher memory after the restart")
	}
	// The subscribers close first, while the publisher still runs.
	for _, p := range []*proc{sub1, sub2, pub} {
		p.wait()
	}
	(&router{srv: srv}).requirePoolsFree(t)
}
