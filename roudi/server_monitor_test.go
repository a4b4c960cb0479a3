package roudi

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http/httptest"
	"os"
	"os/exec"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/parallax-ipc/parallax/internal/discovery"
	"github.com/parallax-ipc/parallax/internal/sys"
	"github.com/parallax-ipc/parallax/internal/testutil"
	"github.com/parallax-ipc/parallax/internal/wire"
	"github.com/parallax-ipc/parallax/roudi/procmon"
)

// serverChildRoles are the re-executed test binary's roles (see TestMain).
var serverChildRoles = map[string]func([]string) int{
	"orphan-socket": orphanSocketChild,
	"hold-socket":   holdSocketChild,
}

// orphanSocketChild connects to the router at args[0], completes the
// handshake, hands its control socket to a grandchild (which keeps it open)
// and prints "ready <grandchild pid>"; then it waits for stdin to close or
// to be killed. Killed, it leaves a socket that does not reach EOF: only
// the process monitor can tell the router it died.
func orphanSocketChild(args []string) int {
	uc, err := net.DialUnix("unixpacket", nil, &net.UnixAddr{Name: args[0], Net: "unixpacket"})
	if err != nil {
		fmt.Fprintln(os.Stderr, "dial:", err)
		return 1
	}
	conn := discovery.NewConn(uc)
	hello := &wire.Hello{Version: wire.Version, MinVersion: wire.MinVersion, PID: int32(os.Getpid()), Name: "orphan"}
	if err := conn.Send(1, hello, nil); err != nil {
		fmt.Fprintln(os.Stderr, "hello:", err)
		return 1
	}
	env, files, err := conn.Recv()
	for _, f := range files {
		f.Close()
	}
	if _, ok := env.Msg.(*wire.Welcome); err != nil || !ok {
		fmt.Fprintf(os.Stderr, "welcome: %T %v\n", env.Msg, err)
		return 1
	}
	f, err := uc.File()
	if err != nil {
		fmt.Fprintln(os.Stderr, "socket file:", err)
		return 1
	}
	exe, err := os.Executable()
	if err != nil {
		return 1
	}
	cmd := exec.Command(exe, "-test.run=^$")
	cmd.Env = append(os.Environ(), "PARALLAX_TEST_CHILD=hold-socket")
	cmd.ExtraFiles = []*os.File{f}
	cmd.Stderr = os.Stderr
	if err := cmd.Start(); err != nil {
		fmt.Fprintln(os.Stderr, "start grandchild:", err)
		return 1
	}
	fmt.Printf("ready %d\n", cmd.Process.Pid)
	_, _ = io.Copy(io.Discard, os.Stdin)
	return 0
}

// holdSocketChild keeps fd 3 (a control socket) open and reads it until the
// router closes it.
func holdSocketChild([]string) int {
	_, _ = io.Copy(io.Discard, os.NewFile(3, "socket"))
	return 0
}

// hasClient reports whether the registry has a client with pid.
func hasClient(t *testing.T, srv *Server, pid int32) bool {
	t.Helper()
	snap, err := srv.Snapshot(context.Background())
	require.NoError(t, err)
	return slices.ContainsFunc(snap.Clients, func(c ClientInfo) bool { return c.PID == pid })
}

// waitFor polls cond until it holds or the deadline passes.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	tick := time.NewTicker(time.Millisecond)
	defer tick.Stop()
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		<-tick.C
	}
}

func mustHaveEBPF(t *testing.T) {
	t.Helper()
	if err := procmon.CheckEBPF(); err != nil {
		if testutil.Strict() {
			t.Fatalf("PARALLAX_TEST_ROOT=1 but the eBPF monitor is unavailable: %v", err)
		}
		t.Skipf("eBPF monitor unavailable (needs CAP_BPF+CAP_PERFMON or root): %v", err)
	}
}

func TestServerMonitorKind(t *testing.T) {
	t.Parallel()
	t.Run("auto", func(t *testing.T) {
		t.Parallel()
		mustHaveEBPF(t)
		srv := startServerConfig(t, testPools, Options{})
		require.Equal(t, procmon.KindEBPF, srv.MonitorKind())
	})
	t.Run("pidfd", func(t *testing.T) {
		t.Parallel()
		var log testutil.Buffer
		srv := startServerConfig(t, testPools, Options{Monitor: procmon.ModePidfd, Logger: slog.New(slog.NewTextHandler(&log, nil))})
		require.Equal(t, procmon.KindPidfd, srv.MonitorKind())
		require.Contains(t, log.String(), "monitor=pidfd", "the ready line names the monitor")
	})
	t.Run("invalid", func(t *testing.T) {
		t.Parallel()
		cfg, err := ParseConfig([]byte(testPools))
		require.NoError(t, err)
		cfg.RuntimeDir = t.TempDir()
		_, err = New(cfg, Options{Monitor: "kprobe", Logger: discardLogger()})
		require.ErrorIs(t, err, procmon.ErrInvalidMode)
	})
}

// TestMonitorReclaimsDeadProcessWithOpenSocket kills a client whose control
// socket stays open in its own child: there is no EOF, so only the process
// monitor can get the client removed.
func TestMonitorReclaimsDeadProcessWithOpenSocket(t *testing.T) {
	t.Parallel()
	for _, mode := range []procmon.Mode{procmon.ModeEBPF, procmon.ModePidfd} {
		t.Run("monitor="+string(mode), func(t *testing.T) {
			t.Parallel()
			if mode == procmon.ModeEBPF {
				mustHaveEBPF(t)
			}
			var log testutil.Buffer
			reclaims := make(chan Reclaim, 8)
			srv := startServerConfig(t, testPools, Options{Monitor: mode, Logger: slog.New(slog.NewTextHandler(&log, nil)),
				OnReclaim: func(r Reclaim) { reclaims <- r }})

			cmd := testutil.ChildCommand(t, "orphan-socket", nil, srv.SocketPath())
			stdin, err := cmd.StdinPipe()
			require.NoError(t, err)
			stdout, err := cmd.StdoutPipe()
			require.NoError(t, err)
			require.NoError(t, cmd.Start())
			pid := int32(cmd.Process.Pid)
			t.Cleanup(func() {
				_ = cmd.Process.Kill()
				stdin.Close()
				_ = cmd.Wait()
			})
			line, err := bufio.NewReader(stdout).ReadString('\n')
			require.NoError(t, err)
			var gpid int
			_, err = fmt.Sscanf(line, "ready %d", &gpid)
			require.NoError(t, err, "child said %q", line)
			grandchild, err := sys.OpenPidfd(gpid)
			require.NoError(t, err)
			t.Cleanup(func() {
				_ = sys.PidfdSignal(grandchild, syscall.SIGKILL)
				grandchild.Close()
			})

			waitFor(t, "the child to be registered", func() bool { return hasClient(t, srv, pid) })
			killed := time.Now()
			require.NoError(t, cmd.Process.Signal(syscall.SIGKILL))
			waitFor(t, "the dead child to be removed", func() bool { return !hasClient(t, srv, pid) })
			t.Logf("%s: SIGKILL to client removed: %v", mode, time.Since(killed))
			// The reclaim carries the exit time the monitor reported (with
			// eBPF the kernel's), and the latency histogram counts it.
			var r Reclaim
			select {
			case r = <-reclaims:
			case <-time.After(10 * time.Second):
				t.Fatal("no reclaim reported")
			}
			require.Equal(t, pid, r.PID)
			require.False(t, r.Exited.IsZero(), "the monitor's exit time")
			require.False(t, r.Exited.Before(killed.Add(-time.Millisecond)), "exit %v before the kill %v", r.Exited, killed)
			require.False(t, r.Done.Before(r.Exited))
			rec := httptest.NewRecorder()
			srv.MetricsHandler().ServeHTTP(rec, httptest.NewRequest("GET", "/metrics", nil))
			require.Contains(t, rec.Body.String(), "parallax_reclaim_latency_seconds_count 1\n")
			require.Contains(t, log.String(), fmt.Sprintf(`msg="client process exited" pid=%d seen_by=%s`, pid, mode))
			// The router closed the orphaned socket: the grandchild sees
			// EOF and exits by itself.
			require.NoError(t, sys.WaitPidfd(context.Background(), grandchild))
			require.True(t, strings.Contains(log.String(), "monitor="+string(mode)))
		})
	}
}
