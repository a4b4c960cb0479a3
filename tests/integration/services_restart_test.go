//go:build integration

package integration

import (
	"bufio"
	"context"
	"flag"
	"fmt"
	"os"
	"slices"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/parallax-ipc/parallax/publisher"
	"github.com/parallax-ipc/parallax/roudi"
	"github.com/parallax-ipc/parallax/services"
)

func init() { childRoles["svcwatch"] = svcWatchMain }

// svcWatchMain has a publisher of "before" and a Watcher: it prints
// "ready" once the watcher reported "before", then "event <kind> <name>"
// for every event, and "watcherr <error>" if the watcher stops. It exits at
// stdin EOF.
func svcWatchMain(args []string) int {
	fs := flag.NewFlagSet("svcwatch", flag.ContinueOnError)
	socket := fs.String("socket", "", "router socket")
	if err := fs.Parse(args); err != nil {
		return 2
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	p, err := publisher.New(ctx, "before", publisher.Options{Socket: *socket})
	if err != nil {
		return childFail("svcwatch", "new publisher: %v", err)
	}
	defer p.Close()
	w, err := services.Watch(ctx, services.Options{Socket: *socket})
	if err != nil {
		return childFail("svcwatch", "watch: %v", err)
	}
	defer w.Close()
	go func() {
		ready := false
		for ev := range w.Events() {
			if !ready && ev.Service.Name == "before" {
				ready = true
				fmt.Println("ready")
				continue
			}
			fmt.Printf("event %v %s\n", ev.Kind, ev.Service.Name)
		}
		fmt.Printf("watcherr %v\n", w.Err())
	}()
	_, _ = bufio.NewReader(os.Stdin).ReadString('\n')
	return 0
}

// TestServicesWatchAcrossRouterKill: a process with a publisher and a
// Watcher, on one control connection; the router is SIGKILLed and a
// successor adopts the process, which resumes on one new connection. The
// watcher watches again over it: a publisher created after the restart
// appears, and the successor lists the process once.
func TestServicesWatchAcrossRouterKill(t *testing.T) {
	dir, sock, domain, r1 := startRestartableRouter(t, "rswatch", ownedConfig)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	wp := spawn(t, "watching process", "svcwatch", "-socket", sock)
	wp.expect("ready")

	killRouter(t, r1)
	router, rctx := startSuccessorWith(t, ownedConfig, domain, sock, dir, 10*time.Second)
	require.True(t, router.Adopted())
	wctx, wcancel := context.WithTimeout(rctx, 30*time.Second)
	defer wcancel()
	require.True(t, waitSnapshot(wctx, router, func(s roudi.Snapshot) bool {
		return slices.ContainsFunc(s.Clients, func(c roudi.ClientInfo) bool { return len(c.Publishers) == 1 })
	}), "the watching process did not resume")
	pb, err := publisher.New(ctx, "after", publisher.Options{Socket: sock})
	require.NoError(t, err)
	defer pb.Close()
	wp.expect("event " + services.Appeared.String() + " after") // the watcher follows the restart
	snap, err := router.Snapshot(ctx)
	require.NoError(t, err)
	var procs []string
	for _, c := range snap.Clients {
		if c.PID == int32(wp.cmd.Process.Pid) {
			procs = append(procs, fmt.Sprintf("client %d: %d publishers", c.ID, len(c.Publishers)))
		}
	}
	require.Len(t, procs, 1, "the watching process's control connections: %v", procs)
	wp.wait()
}
