//go:build integration

package integration

import (
	"bufio"
	"bytes"
	"context"
	"encoding/binary"
	"flag"
	"fmt"
	"log/slog"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/parallax-ipc/parallax/internal/testhook"
	"github.com/parallax-ipc/parallax/publisher"
	"github.com/parallax-ipc/parallax/roudi"
	"github.com/parallax-ipc/parallax/subscriber"
)

func init() { childRoles["rusmall"] = restartSmallMain }

// TestRouterRestartUndersized: a publisher that declared no payload size
// keeps its undersized classes across a router restart
// (docs/design/memory-ownership.md §8.23). It resumes before its first
// small loan; the restarted router must still know it as undeclared and
// grant the 64-byte class it asks for then, and its subscriber receives
// every sample intact across the switch.
func TestRouterRestartUndersized(t *testing.T) {
	dir, sock, domain, r1 := startRestartableRouter(t, "rus", ownedConfig)
	c := spawn(t, "rusmall", "rusmall", "-socket", sock)
	c.expect("ready")
	killRouter(t, r1)
	srv, ctx := startSuccessorWith(t, ownedConfig, domain, sock, dir, 10*time.Second)
	require.True(t, srv.Adopted())
	waitCtx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	require.True(t, waitSnapshot(waitCtx, srv, func(s roudi.Snapshot) bool { return len(s.Clients) == 1 && len(s.Connections) == 1 }),
		"the client did not resume")
	c.send("small")
	f := c.expect("small ")
	require.Equal(t, "64", f[0], "after %s samples a 64-byte loan still takes a %s-byte chunk: the restarted router did not grant the undersized class", f[1], f[0])
	c.send("quit")
	c.wait()
}

// restartSmallMain is the child of TestRouterRestartUndersized and
// TestUndersizedAskDuringResume: a subscriber and an undeclared publisher
// of topic "rus" in one process. It prints "ready" once they are
// connected (with -hook, after arming that test hook; its log lines go to
// stdout then). On "small" it publishes 64-byte samples, each taken back
// and checked byte for byte, until a loan takes a 64-byte chunk or 10 s
// pass, and prints "small <chunk size of the last loan> <samples>"; "one"
// publishes one ("one <chunk size>"); "release" disarms the hook (a paused
// goroutine goes on: "released"). It exits on "quit" or stdin EOF.
func restartSmallMain(args []string) int {
	fs := flag.NewFlagSet("rusmall", flag.ContinueOnError)
	socket := fs.String("socket", "", "")
	hook := fs.String("hook", "", "")
	if fs.Parse(args) != nil {
		return 2
	}
	if *hook != "" {
		slog.SetDefault(slog.New(slog.NewTextHandler(os.Stdout, &slog.HandlerOptions{
			ReplaceAttr: func(_ []string, a slog.Attr) slog.Attr {
				if a.Key == slog.TimeKey {
					return slog.Attr{}
				}
				return a
			}})))
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	sub, err := subscriber.New(ctx, "rus", subscriber.Options{Socket: *socket})
	if err != nil {
		return childFail("rusmall", "%v", err)
	}
	defer sub.Close()
	pub, err := publisher.New(ctx, "rus", publisher.Options{Socket: *socket}) // undeclared: the 4 KiB default class
	if err != nil {
		return childFail("rusmall", "%v", err)
	}
	defer pub.Close()
	if err := pub.WaitForSubscribers(ctx, 1); err != nil {
		return childFail("rusmall", "wait for the subscriber: %v", err)
	}
	if *hook != "" {
		testhook.Arm(*hook)
	}
	fmt.Println("ready")
	in := bufio.NewScanner(os.Stdin)
	n := 0
	for in.Scan() {
		switch in.Text() {
		case "small":
			chunk := 0
			for deadline := time.Now().Add(10 * time.Second); chunk != 64 && time.Now().Before(deadline); {
				// Each 64-byte loan served by a 4 KiB chunk asks for
				// the small class (once, in the background); a later
				// loan takes it.
				n++
				if chunk, err = sendSmall(pub, sub, n); err != nil {
					return childFail("rusmall", "%v", err)
				}
			}
			fmt.Printf("small %d %d\n", chunk, n)
		case "one":
			n++
			chunk, err := sendSmall(pub, sub, n)
			if err != nil {
				return childFail("rusmall", "%v", err)
			}
			fmt.Printf("one %d\n", chunk)
		case "release":
			testhook.Arm("")
			fmt.Println("released")
		case "quit":
			return 0
		}
	}
	return 0
}

// sendSmall publishes sample n (64 bytes), takes it back, checks it byte
// for byte and returns the size of the chunk its loan took.
func sendSmall(pub *publisher.Publisher, sub *subscriber.Subscriber, n int) (int, error) {
	c, err := pub.Loan(64)
	if err != nil {
		return 0, fmt.Errorf("loan: %w", err)
	}
	chunk := cap(c.Bytes())
	b := c.Bytes()
	for i := range b {
		b[i] = byte(n + 7*i)
	}
	binary.LittleEndian.PutUint64(b, uint64(n))
	want := bytes.Clone(b)
	if err := pub.Publish(c); err != nil {
		return 0, fmt.Errorf("publish %d: %w", n, err)
	}
	x, err := sub.TakeTimeout(10 * time.Second)
	if err != nil {
		return 0, fmt.Errorf("take %d: %w", n, err)
	}
	if !bytes.Equal(want, x.Bytes()) {
		return 0, fmt.Errorf("sample %d corrupted", n)
	}
	if err := x.Release(); err != nil {
		return 0, fmt.Errorf("release %d: %w", n, err)
	}
	return chunk, nil
}

// TestUndersizedAskDuringResume: the small-class request of an undeclared
// publisher that goes out while its process resumes (the restarted router
// took it back, the process still sends on the old connection: held there
// by the hook resume.replied) finds no router. It is asked again once the
// process is back, and 64-byte loans move to the 64-byte class. Before,
// the failure counted as a refusal, never asked again: the publisher kept
// 4 KiB chunks for 64-byte samples until it closed (a flake of
// TestRouterRestartUndersized under load).
func TestUndersizedAskDuringResume(t *testing.T) {
	if !testhook.Enabled {
		t.Skip("needs the parallax_testhook build tag")
	}
	dir, sock, domain, r1 := startRestartableRouter(t, "rua", ownedConfig)
	c := spawnHooked(t, "rusmall", "rusmall", "-socket", sock, "-hook", "resume.replied")
	c.expect("ready")
	killRouter(t, r1)
	srv, _ := startSuccessorWith(t, ownedConfig, domain, sock, dir, 10*time.Second)
	require.True(t, srv.Adopted())
	c.reached(t, "resume.replied")
	// One small loan; its request for the small class goes to the dead
	// connection, in the background: its log line and the loan's report
	// come in either order.
	c.send("one")
	for one, asked, deadline := false, false, time.After(childTimeout); !one || !asked; {
		var l string
		var ok bool
		select {
		case l, ok = <-c.lines:
			require.True(t, ok, "the child exited; output:\n%s", c.output())
		case <-deadline:
			t.Fatalf("the small loan or its request did not end; output:\n%s", c.output())
		}
		require.NotContains(t, l, "keeps its default class", "a small-class request that found no router counted as a refusal")
		switch {
		case strings.HasPrefix(l, "one "):
			require.Equal(t, "one 4096", l, "the first small loan, before any grant")
			one = true
		case strings.Contains(l, "small-class request found no router"):
			asked = true
		}
	}
	c.cmdLine("release", "released")
	f := c.cmdLine("small", "small ")
	require.Equal(t, "64", f[0], "after %s samples a 64-byte loan still takes a %s-byte chunk: the small class was not asked for again after the resume", f[1], f[0])
	c.send("quit")
	c.wait()
}
