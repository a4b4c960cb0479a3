//go:build integration

package integration

import (
	"bufio"
	"context"
	"errors"
	"flag"
	"fmt"
	"os"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/parallax-ipc/parallax/internal/testhook"
	"github.com/parallax-ipc/parallax/publisher"
	"github.com/parallax-ipc/parallax/roudi"
	"github.com/parallax-ipc/parallax/services"
	"github.com/parallax-ipc/parallax/subscriber"
)

func init() { childRoles["staleconn"] = staleConnMain }

// staleConnMain creates a publisher on "sc-before" (so that the process
// has a runtime), arms the hook control.eof and prints "ready". On "create"
// it creates a subscriber and a publisher on "sc-after" and a service
// watcher, the one -first names first (the one whose request finds the
// dead connection), sends one sample from the publisher to the subscriber
// and prints "created ok" (or "created" and the first error); on "release"
// it lets the paused control reader go on ("released"). It exits at stdin
// EOF.
func staleConnMain(args []string) int {
	fs := flag.NewFlagSet("staleconn", flag.ContinueOnError)
	socket := fs.String("socket", "", "")
	first := fs.String("first", "subscriber", "")
	if fs.Parse(args) != nil {
		return 2
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	before, err := publisher.New(ctx, "sc-before", publisher.Options{Socket: *socket})
	if err != nil {
		return childFail("staleconn", "%v", err)
	}
	defer before.Close()
	testhook.Arm("control.eof")
	fmt.Println("ready")
	in := bufio.NewScanner(os.Stdin)
	for in.Scan() {
		switch in.Text() {
		case "create":
			err := staleConnCreate(ctx, *socket, *first)
			if err == nil {
				fmt.Println("created ok")
			} else {
				fmt.Printf("created %v\n", err)
			}
		case "release":
			testhook.Arm("")
			fmt.Println("released")
		default:
			return childFail("staleconn", "bad line %q", in.Text())
		}
	}
	return 0
}

// staleConnCreate creates the endpoints of a "create", first first, and
// passes one sample; they stay open (the test looks for them at the
// router).
func staleConnCreate(ctx context.Context, socket, first string) error {
	var sub *subscriber.Subscriber
	var pub *publisher.Publisher
	create := map[string]func() error{
		"subscriber": func() (err error) {
			sub, err = subscriber.New(ctx, "sc-after", subscriber.Options{Socket: socket})
			return err
		},
		"publisher": func() (err error) {
			pub, err = publisher.New(ctx, "sc-after", publisher.Options{Socket: socket, MaxPayload: 64})
			return err
		},
		"watch": func() error {
			_, err := services.Watch(ctx, services.Options{Socket: socket}) // open until the process exits
			return err
		},
	}
	order := []string{first}
	for _, n := range []string{"subscriber", "publisher", "watch"} {
		if n != first {
			order = append(order, n)
		}
	}
	for _, n := range order {
		if err := create[n](); err != nil {
			return fmt.Errorf("%s: %w", n, err)
		}
	}
	if err := pub.WaitForSubscribers(ctx, 1); err != nil {
		return err
	}
	c, err := pub.Loan(8)
	if err != nil {
		return err
	}
	copy(c.Bytes(), "stalecon")
	if err := pub.Publish(c); err != nil {
		return err
	}
	x, err := sub.TakeTimeout(10 * time.Second)
	if err != nil {
		return err
	}
	if string(x.Bytes()) != "stalecon" {
		return errors.New("sample corrupted: " + string(x.Bytes()))
	}
	return x.Release()
}

// TestCreateBeforeRouterDeathSeen: endpoints created after the router died,
// before the process's control reader has seen the connection end (held
// there by the hook control.eof), are created on the restarted router.
// Before, the runtime was reused as long as its reader had not marked it
// dead, and the Create went into the dead connection: "sendmsg: broken
// pipe" (CI run ci8d, services TestWatchAcrossRouterRestart). The old
// runtime still resumes its publisher with the new router.
func TestCreateBeforeRouterDeathSeen(t *testing.T) {
	if !testhook.Enabled {
		t.Skip("needs the parallax_testhook build tag")
	}
	for _, first := range []string{"subscriber", "publisher", "watch"} {
		t.Run("first="+first, func(t *testing.T) {
			testCreateBeforeRouterDeathSeen(t, first) // parallel (startRestartableRouter)
		})
	}
}

func testCreateBeforeRouterDeathSeen(t *testing.T, first string) {
	dir, sock, domain, r1 := startRestartableRouter(t, "sce", testConfig)
	h := spawnHooked(t, "staleconn", "staleconn", "-socket", sock, "-first", first)
	h.expect("ready")

	killRouter(t, r1)
	h.reached(t, "control.eof")
	srv, ctx := startSuccessorWith(t, testConfig, domain, sock, dir, 10*time.Second)
	require.Equal(t, []string{"ok"}, h.cmdLine("create", "created "), "endpoints created while the reader had not seen the router go")
	h.cmdLine("release", "released")

	waitCtx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	pid := int32(h.cmd.Process.Pid)
	var last roudi.Snapshot
	ok := waitSnapshot(waitCtx, srv, func(s roudi.Snapshot) bool {
		last = s
		pubs, subs, watches := 0, 0, 0
		for _, c := range s.Clients {
			if c.PID == pid {
				pubs += len(c.Publishers)
				subs += len(c.Subscribers)
				watches += c.Watches
			}
		}
		return pubs == 2 && subs == 1 && watches == 1
	})
	require.True(t, ok, "the restarted router does not have the child's two publishers (one resumed, one new), its subscriber and its watch: %+v", last.Clients)
	h.wait()
}
