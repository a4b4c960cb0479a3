//go:build integration

package integration

import (
	"bufio"
	"context"
	"flag"
	"fmt"
	"os"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/parallax-ipc/parallax/internal/testhook"
	"github.com/parallax-ipc/parallax/publisher"
	"github.com/parallax-ipc/parallax/roudi"
	"github.com/parallax-ipc/parallax/subscriber"
)

func init() { childRoles["rcclose"] = resumeCloseMain }

// resumeCloseMain creates a publisher on "rcp", a subscriber on "rcs" and
// a subscriber on "rckeep", prints "ready", and arms the hook
// resume.snapshot. On "close" it closes the first two and prints
// "closed <publisher err> <subscriber err>"; on "release" it lets a
// paused resume go on ("released"). It exits at stdin EOF.
func resumeCloseMain(args []string) int {
	fs := flag.NewFlagSet("rcclose", flag.ContinueOnError)
	socket := fs.String("socket", "", "")
	if fs.Parse(args) != nil {
		return 2
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	pub, err := publisher.New(ctx, "rcp", publisher.Options{Socket: *socket})
	if err != nil {
		return childFail("rcclose", "%v", err)
	}
	sub, err := subscriber.New(ctx, "rcs", subscriber.Options{Socket: *socket})
	if err != nil {
		return childFail("rcclose", "%v", err)
	}
	keep, err := subscriber.New(ctx, "rckeep", subscriber.Options{Socket: *socket})
	if err != nil {
		return childFail("rcclose", "%v", err)
	}
	defer keep.Close()
	testhook.Arm("resume.snapshot")
	fmt.Println("ready")
	in := bufio.NewScanner(os.Stdin)
	for in.Scan() {
		switch in.Text() {
		case "close":
			fmt.Printf("closed %v %v\n", pub.Close(), sub.Close())
		case "release":
			testhook.Arm("")
			fmt.Println("released")
		default:
			return childFail("rcclose", "bad line %q", in.Text())
		}
	}
	return 0
}

// TestCloseDuringResume: a publisher and a subscriber that close while
// their process resumes with a restarted router (after the resume's
// snapshot of its endpoints, before the new router answered) are closed
// at the new router too, while the process and its other subscriber live
// on: their Close went to the dead router and succeeded, and without the
// runtime closing them after the switch the restarted router kept both
// (a closed block-producer subscriber would hold its publishers back)
// until the process exits.
func TestCloseDuringResume(t *testing.T) {
	if !testhook.Enabled {
		t.Skip("needs the parallax_testhook build tag")
	}
	dir, sock, domain, r1 := startRestartableRouter(t, "rcc", testConfig)
	h := spawnHooked(t, "rcclose", "rcclose", "-socket", sock)
	h.expect("ready")

	killRouter(t, r1)
	srv, ctx := startSuccessorWith(t, testConfig, domain, sock, dir, 10*time.Second)
	h.reached(t, "resume.snapshot")
	require.Equal(t, []string{"<nil>", "<nil>"}, h.cmdLine("close", "closed "), "Close while no router answers")
	h.cmdLine("release", "released")

	waitCtx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	pid := int32(h.cmd.Process.Pid)
	var last roudi.Snapshot
	ok := waitSnapshot(waitCtx, srv, func(s roudi.Snapshot) bool {
		last = s
		for _, c := range s.Clients {
			if c.PID == pid {
				return len(c.Publishers) == 0 && len(c.Subscribers) == 1
			}
		}
		return false
	})
	require.True(t, ok, "the restarted router still has the endpoints closed during the resume: %+v", last.Clients)
}
