//go:build integration

package integration

import (
	"bufio"
	"bytes"
	"context"
	"encoding/binary"
	"flag"
	"fmt"
	"os"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

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

// restartSmallMain is the child of TestRouterRestartUndersized: a
// subscriber and an undeclared publisher of topic "rus" in one process.
// It prints "ready" once they are connected; on "small" it publishes
// 64-byte samples, each taken back and checked byte for byte, until a
// loan takes a 64-byte chunk or 10 s pass, and prints "small <chunk
// size of the last loan> <samples>"; it exits on "quit" or stdin EOF.
func restartSmallMain(args []string) int {
	fs := flag.NewFlagSet("rusmall", flag.ContinueOnError)
	socket := fs.String("socket", "", "")
	if fs.Parse(args) != nil {
		return 2
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
	fmt.Println("ready")
	in := bufio.NewScanner(os.Stdin)
	for in.Scan() {
		switch in.Text() {
		case "small":
			chunk, n := 0, 0
			for deadline := time.Now().Add(10 * time.Second); chunk != 64 && time.Now().Before(deadline); {
				// Each 64-byte loan served by a 4 KiB chunk asks for
				// the small class (once, in the background); a later
				// loan takes it.
				c, err := pub.Loan(64)
				if err != nil {
					return childFail("rusmall", "loan: %v", err)
				}
				n++
				chunk = cap(c.Bytes())
				b := c.Bytes()
				for i := range b {
					b[i] = byte(n + 7*i)
				}
				binary.LittleEndian.PutUint64(b, uint64(n))
				want := bytes.Clone(b)
				if err := pub.Publish(c); err != nil {
					return childFail("rusmall", "publish %d: %v", n, err)
				}
				x, err := sub.TakeTimeout(10 * time.Second)
				if err != nil {
					return childFail("rusmall", "take %d: %v", n, err)
				}
				if !bytes.Equal(want, x.Bytes()) {
					return childFail("rusmall", "sample %d corrupted", n)
				}
				if err := x.Release(); err != nil {
					return childFail("rusmall", "release %d: %v", n, err)
				}
			}
			fmt.Printf("small %d %d\n", chunk, n)
		case "quit":
			return 0
		}
	}
	return 0
}
