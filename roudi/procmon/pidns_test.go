//go:build linux

package procmon

import (
	"fmt"
	"io"
	"os/exec"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/parallax-ipc/parallax/internal/sys"
	"github.com/parallax-ipc/parallax/internal/testutil"
)

// TestEBPFInChildPidNamespace runs the eBPF monitor as a router in a
// container would: in a child pid namespace, watching a client whose pid
// there is N while an unrelated host process has init-namespace pid N. The
// host process's exit must not be reported as the client's; the client's
// own death must be, by the tracer (not only by its pidfd).
func TestEBPFInChildPidNamespace(t *testing.T) {
	t.Parallel()
	testutil.RequiresRoot(t)
	mustHaveEBPF(t)
	var out string
	for attempt := 0; attempt < 3; attempt++ { // again only when a thread took the pid (testutil.PidTakenReport)
		decoy := startChild(t) // a host process; its pid is N
		cmd := testutil.PidNSCommand(t, "pidns-monitor", strconv.Itoa(int(decoy.pid)))
		out = testutil.RunNSChild(t, cmd, func(line string, tell io.Writer) {
			if line != "ready" {
				return
			}
			decoy.kill(t)
			_ = decoy.wait()
			fmt.Fprintln(tell, "decoy-dead")
		})
		t.Log(out)
		if !strings.Contains(out, testutil.PidTakenReport) {
			break
		}
	}
	require.Contains(t, out, "ok", "child's report:\n%s", out)
}

// pidnsMonitorChild is TestEBPFInChildPidNamespace's child, the init of a
// new pid namespace. It mounts its own /proc, runs the eBPF monitor, starts
// a "threads" child at pid args[0] of the namespace (the init-namespace pid
// of the live decoy) and then one more (the sentinel), watches both, prints
// "ready" and waits for "decoy-dead" on stdin. Then it kills the sentinel
// and reads events until the tracer has seen the sentinel's exit: records
// are handled in order, so a decoy's exit reported under the client's
// number would be on Events by then. Last it kills the client and waits for
// the tracer's report of it. It prints "ok", or "fail: why" and exits 1.
func pidnsMonitorChild(args []string) int {
	fail := testutil.FailReport
	n, err := testutil.InitDecoyNS(args[0])
	if err != nil {
		return fail("%v", err)
	}
	traced := make(chan int32, 64)
	m, err := newEBPF(func(tgid int32, _ uint64) { traced <- tgid })
	if err != nil {
		return fail("ebpf monitor in a child pid namespace: %v", err)
	}
	defer m.Close()
	// The client first: until it has pid n, no other process may run in
	// the namespace, whose runtime threads could take n (a sentinel
	// started first did, in CI).
	if err := testutil.SetNextPid(n); err != nil {
		return fail("%v", err)
	}
	client, _, err := testutil.StartReadyChild("threads")
	if err != nil {
		return fail("start client: %v", err)
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
	sentinel, _, err := testutil.StartReadyChild("threads")
	if err != nil {
		return fail("start sentinel: %v", err)
	}
	defer func() { _ = sentinel.Process.Kill() }()
	for _, c := range []*exec.Cmd{sentinel, client} {
		pidfd, err := sys.OpenPidfd(c.Process.Pid)
		if err != nil {
			return fail("pidfd of %d: %v", c.Process.Pid, err)
		}
		if err := m.Watch(int32(c.Process.Pid), pidfd); err != nil {
			return fail("%v", err)
		}
	}
	fmt.Println("ready")
	if err := testutil.AwaitParent("decoy-dead"); err != nil {
		return fail("%v", err)
	}

	spid := int32(sentinel.Process.Pid)
	_ = sentinel.Process.Signal(syscall.SIGKILL)
	_ = sentinel.Wait()
	deadline := time.After(eventTimeout)
	for sawTrace, sawEvent := false, false; !sawTrace || !sawEvent; {
		select {
		case ex := <-m.Events():
			if ex.PID != spid {
				return fail("exit %+v reported while the client (pid %d) lives: the decoy's", ex, n)
			}
			sawEvent = true
		case pid := <-traced:
			sawTrace = sawTrace || pid == spid
		case <-deadline:
			return fail("sentinel's exit: traced %t, reported %t within %v", sawTrace, sawEvent, eventTimeout)
		}
	}

	_ = client.Process.Signal(syscall.SIGKILL)
	_ = client.Wait()
	select {
	case ex := <-m.Events():
		if ex.PID != int32(n) {
			return fail("exit %+v reported, want the client's (pid %d)", ex, n)
		}
		fmt.Printf("client exit reported by %s\n", ex.Source)
	case <-time.After(eventTimeout):
		return fail("client's exit not reported within %v", eventTimeout)
	}
	fmt.Println("ok")
	return 0
}

// TestEBPFOldRecordIsConfirmed feeds the monitor a record of a watched
// number taken before the watch began, as when the number's previous owner
// exited and its record is read late: it must not be reported while the
// watched process lives. Its real death is reported.
func TestEBPFOldRecordIsConfirmed(t *testing.T) {
	t.Parallel()
	mustHaveEBPF(t)
	m, err := newEBPF(nil)
	require.NoError(t, err)
	t.Cleanup(func() { require.NoError(t, m.Close()) })
	before, err := sys.MonotonicNanos()
	require.NoError(t, err)
	c := startChild(t)
	require.NoError(t, m.Watch(c.pid, nil))

	m.traced(c.pid, uint64(before))
	select {
	case ex := <-m.Events():
		t.Fatalf("exit %+v reported from a record older than the watch while pid %d lives", ex, c.pid)
	default:
	}
	c.kill(t)
	ex := nextExit(t, m)
	require.Equal(t, c.pid, ex.PID)
	_ = c.wait()
}
