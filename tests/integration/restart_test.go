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
	_, _ = io.Copy(io.Discard, os.Stdin)
	if err := pub.Close(); err != nil {
		return childFail("rspub", "close: %v", err)
	}
	return 0
}

// restartSubMain takes "rs" samples, checking order and content, prints
// "progress <n>" every 500, and on "stop <last>" reads until seq <last>,
// prints "done <n> <first> <bad> <stale>" and closes at stdin EOF. A take
// that fails on a ref naming no held chunk (stale, invalid, not held) is
// counted in <stale> with -count-stale, and fails the child without it.
func restartSubMain(args []string) int {
	fs := flag.NewFlagSet("rssub", flag.ContinueOnError)
	socket := fs.String("socket", "", "")
	countStale := fs.Bool("count-stale", false, "")
	if fs.Parse(args) != nil {
		return 2
	}
	sub, err := subscriber.New(context.Background(), "rs", subscriber.Options{Socket: *socket, QueueCapacity: 64, Policy: subscriber.BlockProducer})
	if err != nil {
		return childFail("rssub", "%v", err)
	}
	var last, first, n, bad, stale uint64
	var target sync.Map
	in := bufio.NewScanner(os.Stdin)
	go func() {
		for in.Scan() {
			var t uint64
			if _, err := fmt.Sscanf(in.Text(), "stop %d", &t); err == nil {
				target.Store("t", t)
			}
		}
	}()
	fmt.Println("ready")
	for {
		if t, ok := target.Load("t"); ok && last >= t.(uint64) {
			break
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
		_ = s.Release()
		if n%500 == 0 {
			fmt.Printf("progress %d\n", n)
		}
	}
	fmt.Printf("done %d %d %d %d\n", n, first, bad, stale)
	if err := sub.Close(); err != nil {
		return childFail("rssub", "close: %v", err)
	}
	return 0
}

func TestRouterRestart(t *testing.T) {
	if *noDaemon {
		t.Skip("needs the parallax-roudi binary (not with -parallax.no-daemon)")
	}
	dir, cfgPath, sock, domain := restartFiles(t, "rs")

	// Router 1: the real binary, to be SIGKILLed.
	r1 := startKillableRouter(t, cfgPath, domain, sock, "-runtime-dir", dir)

	sub1 := spawn(t, "sub1", "rssub", "-socket", sock)
	sub1.expect("ready")
	pub := spawn(t, "pub", "rspub", "-socket", sock)
	pub.expect("ready")
	sub1.expect("progress")

	// Kill the router in the middle of the stream.
	killRouter(t, r1)
	// No router: the stream keeps flowing.
	sub1.expect("progress")
	sub1.expect("progress")

	// Router 2, in this process (so the test can audit its pools), on the
	// same domain and socket: it adopts the survivors' segments.
	srv, ctx := startSuccessor(t, domain, sock, dir, 2*time.Second)
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
	for _, p := range []*proc{pub, sub1, sub2} {
		p.wait()
	}
	(&router{srv: srv}).requirePoolsFree(t)
}
