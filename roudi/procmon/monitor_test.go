package procmon

import (
	"bufio"
	"context"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/parallax-ipc/parallax"
	"github.com/parallax-ipc/parallax/internal/sys"
	"github.com/parallax-ipc/parallax/internal/testutil"
)

// eventTimeout bounds every wait for an exit event (a deadline for a
// condition, not a timing assertion).
const eventTimeout = 20 * time.Second

// mustHaveEBPF skips (or fails under PARALLAX_TEST_ROOT=1) unless this
// process can run the eBPF monitor.
func mustHaveEBPF(t testing.TB) {
	t.Helper()
	if err := CheckEBPF(); err != nil {
		if testutil.Strict() {
			t.Fatalf("PARALLAX_TEST_ROOT=1 but the eBPF monitor is unavailable: %v", err)
		}
		t.Skipf("eBPF monitor unavailable (needs CAP_BPF+CAP_PERFMON or root): %v", err)
	}
}

// monitors returns a constructor per available mode.
func monitorModes(t *testing.T) map[string]func(t *testing.T) Monitor {
	return map[string]func(t *testing.T) Monitor{
		"ebpf": func(t *testing.T) Monitor {
			mustHaveEBPF(t)
			m, err := New(ModeEBPF)
			require.NoError(t, err)
			t.Cleanup(func() { require.NoError(t, m.Close()) })
			return m
		},
		"pidfd": func(t *testing.T) Monitor {
			m, err := New(ModePidfd)
			require.NoError(t, err)
			t.Cleanup(func() { require.NoError(t, m.Close()) })
			return m
		},
	}
}

// child is a running "threads" child process.
type child struct {
	cmd     *exec.Cmd
	pid     int32
	threads int
	stdin   io.WriteCloser
	waited  sync.Once
	werr    error
}

// startChild starts a multi-threaded child and waits for its ready line.
// Cleanup kills and reaps it.
func startChild(t testing.TB) *child {
	t.Helper()
	cmd := testutil.ChildCommand(t, "threads", nil)
	stdin, err := cmd.StdinPipe()
	require.NoError(t, err)
	stdout, err := cmd.StdoutPipe()
	require.NoError(t, err)
	require.NoError(t, cmd.Start())
	c := &child{cmd: cmd, pid: int32(cmd.Process.Pid), stdin: stdin}
	t.Cleanup(func() {
		_ = cmd.Process.Kill()
		_ = c.wait()
	})
	line, err := bufio.NewReader(stdout).ReadString('\n')
	require.NoError(t, err, "read child's ready line")
	f := strings.Fields(line)
	require.Len(t, f, 2, "ready line %q", line)
	require.Equal(t, "ready", f[0])
	_, err = fmtSscan(f[1], &c.threads)
	require.NoError(t, err)
	return c
}

func (c *child) wait() error {
	c.waited.Do(func() {
		c.stdin.Close()
		c.werr = c.cmd.Wait()
	})
	return c.werr
}

// kill SIGKILLs the child and returns when it was signalled.
func (c *child) kill(t testing.TB) time.Time {
	t.Helper()
	at := time.Now()
	require.NoError(t, c.cmd.Process.Signal(syscall.SIGKILL))
	return at
}

// nextExit waits for the next event.
func nextExit(t testing.TB, m Monitor) Exit {
	t.Helper()
	select {
	case ex, ok := <-m.Events():
		require.True(t, ok, "events closed")
		return ex
	case <-time.After(eventTimeout):
		t.Fatalf("no exit event within %v", eventTimeout)
	}
	return Exit{}
}

func TestReportsKilledChildOnce(t *testing.T) {
	t.Parallel()
	for name, newMon := range monitorModes(t) {
		t.Run("monitor="+name, func(t *testing.T) {
			t.Parallel()
			var (
				mu     sync.Mutex
				traced = map[int32]int{}
			)
			var m Monitor
			if name == "ebpf" {
				mustHaveEBPF(t)
				em, err := newEBPF(func(tgid int32, _ uint64) {
					mu.Lock()
					traced[tgid]++
					mu.Unlock()
				})
				require.NoError(t, err)
				t.Cleanup(func() { require.NoError(t, em.Close()) })
				m = em
			} else {
				m = newMon(t)
			}
			a, unwatched, sentinel := startChild(t), startChild(t), startChild(t)
			require.Greater(t, a.threads, childThreads, "child should be multi-threaded")
			require.NoError(t, m.Watch(a.pid, nil))
			require.NoError(t, m.Watch(sentinel.pid, nil))

			// An unwatched process exits (and is reaped) first: it
			// must never be reported.
			unwatched.kill(t)
			_ = unwatched.wait()

			at := a.kill(t)
			ex := nextExit(t, m)
			lat := time.Since(at)
			require.Equal(t, Exit{PID: a.pid, Source: name}, Exit{PID: ex.PID, Source: ex.Source})
			// The exit time lies between the kill and the report (with
			// eBPF it is the kernel's timestamp of the exit).
			require.False(t, ex.At.Before(at.Add(-time.Millisecond)), "exit at %v, killed at %v", ex.At, at)
			require.False(t, ex.At.After(time.Now()), "exit at %v is in the future", ex.At)
			t.Logf("%s: SIGKILL of a %d-thread child to exit event: %v", name, a.threads, lat)
			_ = a.wait()

			sentinel.kill(t)
			sx := nextExit(t, m)
			require.Equal(t, Exit{PID: sentinel.pid, Source: name}, Exit{PID: sx.PID, Source: sx.Source})
			_ = sentinel.wait()
			select {
			case ex := <-m.Events():
				t.Fatalf("unexpected event %+v", ex)
			default:
			}
			if name == "ebpf" {
				mu.Lock()
				defer mu.Unlock()
				// Filtered in the kernel to group_dead: one record
				// per process, not one per thread.
				require.Equal(t, 1, traced[a.pid], "records for the killed child's tgid")
				require.Equal(t, 1, traced[unwatched.pid], "records for the unwatched child's tgid")
			}
		})
	}
}

func TestWatchAfterExitReportsAtOnce(t *testing.T) {
	t.Parallel()
	for name, newMon := range monitorModes(t) {
		t.Run("monitor="+name, func(t *testing.T) {
			t.Parallel()
			m := newMon(t)
			for _, withPidfd := range []bool{false, true} {
				c := startChild(t)
				pidfd, err := sys.OpenPidfd(int(c.pid))
				require.NoError(t, err)
				c.kill(t)
				// Exited but not reaped: the pidfd is readable.
				require.NoError(t, sys.WaitPidfd(context.Background(), pidfd))
				if withPidfd {
					require.NoError(t, m.Watch(c.pid, pidfd))
				} else {
					pidfd.Close()
					require.NoError(t, m.Watch(c.pid, nil))
				}
				ex := nextExit(t, m)
				require.Equal(t, c.pid, ex.PID)
				_ = c.wait()
			}
			// Reaped before the watch: pidfd_open fails with ESRCH.
			c := startChild(t)
			c.kill(t)
			_ = c.wait()
			require.NoError(t, m.Watch(c.pid, nil))
			require.Equal(t, c.pid, nextExit(t, m).PID)
		})
	}
}

func TestUnwatch(t *testing.T) {
	t.Parallel()
	for name, newMon := range monitorModes(t) {
		t.Run("monitor="+name, func(t *testing.T) {
			t.Parallel()
			m := newMon(t)
			a, b := startChild(t), startChild(t)
			require.NoError(t, m.Watch(a.pid, nil))
			require.NoError(t, m.Watch(a.pid, nil), "watching twice is a no-op")
			require.NoError(t, m.Watch(b.pid, nil))
			m.Unwatch(a.pid)
			m.Unwatch(12345678) // not watched: no-op
			a.kill(t)
			_ = a.wait()
			b.kill(t)
			require.Equal(t, b.pid, nextExit(t, m).PID, "the unwatched child must not be reported")
		})
	}
}

func TestCloseAndInvalidPID(t *testing.T) {
	t.Parallel()
	for name := range monitorModes(t) {
		t.Run("monitor="+name, func(t *testing.T) {
			t.Parallel()
			if name == "ebpf" {
				mustHaveEBPF(t)
			}
			m, err := New(Mode(name))
			require.NoError(t, err)
			require.Equal(t, name, m.Kind())
			require.ErrorIs(t, m.Watch(0, nil), ErrInvalidPID)
			c := startChild(t)
			require.NoError(t, m.Watch(c.pid, nil))
			require.NoError(t, m.Close())
			require.NoError(t, m.Close(), "Close is idempotent")
			_, ok := <-m.Events()
			require.False(t, ok, "Events is closed by Close")
			require.ErrorIs(t, m.Watch(c.pid, nil), os.ErrClosed)
		})
	}
}

func TestAutoPicksEBPFWhenPrivileged(t *testing.T) {
	t.Parallel()
	mustHaveEBPF(t)
	m, err := New(ModeAuto)
	require.NoError(t, err)
	defer m.Close()
	require.Equal(t, KindEBPF, m.Kind())
	require.Empty(t, FallbackReason(m))
	m2, err := New("")
	require.NoError(t, err)
	defer m2.Close()
	require.Equal(t, KindEBPF, m2.Kind())
}

// TestUnprivilegedFallsBackToPidfd runs the probe child as uid/gid 65534
// with no capabilities: auto mode must fall back to pidfd with a reason
// naming the permission problem, and ebpf mode must fail with
// ErrNotSupported (and os.ErrPermission).
func TestUnprivilegedFallsBackToPidfd(t *testing.T) {
	t.Parallel()
	testutil.RequiresRoot(t)
	exe := testutil.WorldExecutableCopy(t)
	cmd := exec.Command(exe, "-test.run=^$")
	cmd.Env = append(os.Environ(), "PARALLAX_TEST_CHILD=probe")
	cmd.SysProcAttr = &syscall.SysProcAttr{Credential: &syscall.Credential{Uid: 65534, Gid: 65534}}
	cmd.Dir = filepath.Dir(exe)
	out, err := cmd.Output()
	require.NoError(t, err, "probe child output:\n%s", out)
	lines := map[string]string{}
	for l := range strings.SplitSeq(strings.TrimSpace(string(out)), "\n") {
		k, v, _ := strings.Cut(l, " ")
		lines[k] = v
	}
	t.Logf("unprivileged probe:\n%s", out)
	require.Equal(t, KindPidfd, lines["auto-kind"])
	require.Contains(t, lines["auto-reason"], "no permission to load BPF programs")
	require.Contains(t, lines["auto-reason"], "operation not permitted")
	require.Contains(t, lines["ebpf-err"], "notsupported=true permission=true")
	require.Equal(t, KindPidfd, lines["pidfd-kind"])
}

func TestParseMode(t *testing.T) {
	t.Parallel()
	for in, want := range map[string]Mode{"": ModeAuto, "auto": ModeAuto, "EBPF": ModeEBPF, " pidfd ": ModePidfd} {
		got, err := ParseMode(in)
		require.NoError(t, err, in)
		require.Equal(t, want, got, in)
	}
	_, err := ParseMode("kprobe")
	require.ErrorIs(t, err, ErrInvalidMode)
	require.ErrorContains(t, err, `"kprobe"`)
	_, err = New("kprobe")
	require.ErrorIs(t, err, ErrInvalidMode)
	require.Equal(t, "auto", Mode("").String())
}

func TestEBPFModeErrorWrapsNotSupported(t *testing.T) {
	t.Parallel()
	if CheckEBPF() == nil {
		t.Skip("eBPF is available here; TestUnprivilegedFallsBackToPidfd covers the failure in a child")
	}
	_, err := New(ModeEBPF)
	require.ErrorIs(t, err, parallax.ErrNotSupported)
}

// BenchmarkKillToEvent measures SIGKILL → exit event per monitor. Starting
// the child is not timed; ns/op is the kill-to-event latency, with p50/p99
// over the run.
func BenchmarkKillToEvent(b *testing.B) {
	for _, name := range []string{"ebpf", "pidfd"} {
		b.Run("monitor="+name, func(b *testing.B) {
			if name == "ebpf" {
				mustHaveEBPF(b)
			}
			m, err := New(Mode(name))
			require.NoError(b, err)
			defer m.Close()
			b.ReportAllocs()
			var lats []time.Duration
			for b.Loop() {
				b.StopTimer()
				c := startChild(b)
				require.NoError(b, m.Watch(c.pid, nil))
				b.StartTimer()
				at := c.kill(b)
				ex := nextExit(b, m)
				lats = append(lats, time.Since(at))
				b.StopTimer()
				require.Equal(b, c.pid, ex.PID)
				_ = c.wait()
				b.StartTimer()
			}
			sort.Slice(lats, func(i, j int) bool { return lats[i] < lats[j] })
			q := func(p float64) float64 { return float64(lats[int(p*float64(len(lats)-1))].Nanoseconds()) }
			var sum time.Duration
			for _, l := range lats {
				sum += l
			}
			b.ReportMetric(float64(sum.Nanoseconds())/float64(len(lats)), "ns/op")
			b.ReportMetric(q(0.5), "p50-ns")
			b.ReportMetric(q(0.99), "p99-ns")
			_ = slices.Max(lats)
		})
	}
}
