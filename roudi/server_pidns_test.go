//go:build linux

package roudi

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/parallax-ipc/parallax/internal/testutil"
	"github.com/parallax-ipc/parallax/roudi/procmon"
)

func init() { serverChildRoles["pidns-router"] = pidnsRouterChild }

// TestMonitorInChildPidNamespace runs the router with the eBPF monitor as
// init of a new pid namespace (a container), with a client whose pid there
// is N while an unrelated host process has init-namespace pid N. The host
// process's exit must not make the router reclaim the live client; the
// client's own death must (its socket is held open by its child, so only
// the monitor can tell).
func TestMonitorInChildPidNamespace(t *testing.T) {
	t.Parallel()
	testutil.RequiresRoot(t)
	mustHaveEBPF(t)
	var report string
	for attempt := 0; attempt < 3; attempt++ { // again only when a thread took the pid (testutil.PidTakenReport)
		// The decoy: a host process that waits for its stdin to close.
		decoy := exec.Command("cat")
		decoyIn, err := decoy.StdinPipe()
		require.NoError(t, err)
		require.NoError(t, decoy.Start())
		t.Cleanup(func() { _ = decoy.Process.Kill(); decoyIn.Close(); _ = decoy.Wait() })
		n := decoy.Process.Pid

		sock := filepath.Join(t.TempDir(), "r.sock")
		cmd := testutil.PidNSCommand(t, "pidns-router", strconv.Itoa(n), sock)
		// Killing the namespace's init kills everything in the namespace.
		report = testutil.RunNSChild(t, cmd, func(line string, tell io.Writer) {
			if line == "ready" {
				require.NoError(t, decoy.Process.Signal(syscall.SIGKILL))
				_ = decoy.Wait()
				fmt.Fprintln(tell, "decoy-dead")
			}
		})
		t.Log(report)
		if !strings.Contains(report, testutil.PidTakenReport) {
			break
		}
	}
	require.Contains(t, report, "ok\n")
}

// pidnsRouterChild is TestMonitorInChildPidNamespace's child, the init of
// a new pid namespace: args are N (the init-namespace pid of the live
// decoy) and the socket path. It mounts its own /proc, runs a router with
// the eBPF monitor, connects a client at pid N of the namespace and then a
// sentinel client ("orphan-socket" children: their sockets outlive them),
// prints "ready" and waits for "decoy-dead" on stdin. It kills the
// sentinel and waits for its reclaim: the monitor reports in order, so a
// decoy's exit taken for the client's would have reclaimed the client
// first. Last it kills the client and waits for its reclaim, reported by
// the monitor. It prints "ok", or "fail: why" and exits 1.
func pidnsRouterChild(args []string) int {
	fail := testutil.FailReport
	n, err := testutil.InitDecoyNS(args[0])
	if err != nil {
		return fail("%v", err)
	}
	cfg, err := ParseConfig([]byte(testPools))
	if err != nil {
		return fail("%v", err)
	}
	cfg.Domain = "pidns" + args[0]
	cfg.Socket = args[1]
	reclaims := make(chan Reclaim, 16)
	srv, err := New(cfg, Options{Monitor: procmon.ModeEBPF, Logger: slog.New(slog.NewTextHandler(os.Stderr, nil)),
		OnReclaim: func(r Reclaim) { reclaims <- r }})
	if err != nil {
		return fail("router in a child pid namespace: %v", err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- srv.Serve(ctx) }()
	defer func() { cancel(); _ = <-done; _ = srv.Close() }()
	select {
	case <-srv.Ready():
	case err := <-done:
		return fail("router stopped: %v", err)
	}
	if k := srv.MonitorKind(); k != procmon.KindEBPF {
		return fail("monitor %s, want ebpf", k)
	}

	// The client first: until it has pid n, no other process may run in
	// the namespace, whose runtime threads could take n.
	if err := testutil.SetNextPid(n); err != nil {
		return fail("%v", err)
	}
	client, err := startOrphanClient(srv)
	if err != nil {
		return fail("client: %v", err)
	}
	defer func() { _ = client.Process.Kill() }()
	if client.Process.Pid != n {
		who, race := testutil.PidTaken(n)
		if race {
			fmt.Printf("%s: client got pid %d, want %d, taken by %s\n", testutil.PidTakenReport, client.Process.Pid, n, who)
			return 0
		}
		return fail("client got pid %d in the namespace, want %d, taken by %s", client.Process.Pid, n, who)
	}
	sentinel, err := startOrphanClient(srv)
	if err != nil {
		return fail("sentinel: %v", err)
	}
	defer func() { _ = sentinel.Process.Kill() }()
	fmt.Println("ready")
	if err := testutil.AwaitParent("decoy-dead"); err != nil {
		return fail("%v", err)
	}

	spid := int32(sentinel.Process.Pid)
	_ = sentinel.Process.Signal(syscall.SIGKILL)
	_ = sentinel.Wait()
	deadline := time.After(20 * time.Second)
	for reclaimed := false; !reclaimed; {
		select {
		case r := <-reclaims:
			if r.PID == int32(n) {
				return fail("live client (pid %d) reclaimed after a host process with init-namespace pid %d exited", n, n)
			}
			reclaimed = r.PID == spid
		case <-deadline:
			return fail("the sentinel (pid %d) was not reclaimed", spid)
		}
	}
	if !clientConnected(srv, int32(n)) {
		return fail("live client (pid %d) is gone", n)
	}

	_ = client.Process.Signal(syscall.SIGKILL)
	_ = client.Wait()
	select {
	case r := <-reclaims:
		if r.PID != int32(n) || r.Exited.IsZero() {
			return fail("reclaim %+v, want the client's (pid %d) with the monitor's exit time", r, n)
		}
	case <-time.After(20 * time.Second):
		return fail("the client (pid %d) was not reclaimed after it was killed", n)
	}
	fmt.Println("ok")
	return 0
}

// startOrphanClient starts an "orphan-socket" child connected to srv and
// waits until the router has registered it. Killing the child leaves its
// socket open in its own child, which exits once the router closes it.
func startOrphanClient(srv *Server) (*exec.Cmd, error) {
	cmd, line, err := testutil.StartReadyChild("orphan-socket", srv.SocketPath())
	if err != nil {
		return nil, err
	}
	if !strings.HasPrefix(line, "ready ") {
		_ = cmd.Process.Kill()
		_ = cmd.Wait()
		return nil, fmt.Errorf("ready line %q", line)
	}
	tick := time.NewTicker(time.Millisecond)
	defer tick.Stop()
	for deadline := time.Now().Add(20 * time.Second); !clientConnected(srv, int32(cmd.Process.Pid)); <-tick.C {
		if time.Now().After(deadline) {
			_ = cmd.Process.Kill()
			_ = cmd.Wait()
			return nil, fmt.Errorf("pid %d not registered", cmd.Process.Pid)
		}
	}
	return cmd, nil
}

// clientConnected reports whether srv has a client with pid.
func clientConnected(srv *Server, pid int32) bool {
	snap, err := srv.Snapshot(context.Background())
	return err == nil && slices.ContainsFunc(snap.Clients, func(c ClientInfo) bool { return c.PID == pid })
}
