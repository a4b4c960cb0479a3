//go:build linux

package testutil

import (
	"bufio"
	"fmt"
	"io"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"syscall"
	"testing"
)

// PidNSCommand is [ChildCommand] for a child that starts as the init
// process (pid 1) of a new pid namespace, in a new mount namespace, so that
// it can mount a procfs of its own (see [MountOwnProc]). Everything in the
// namespace is killed when the child exits. It skips (or fails, in strict
// mode) t unless it runs as root.
func PidNSCommand(t testing.TB, role string, args ...string) *exec.Cmd {
	t.Helper()
	RequiresRoot(t)
	cmd := ChildCommand(t, role, nil, args...)
	cmd.SysProcAttr = &syscall.SysProcAttr{
		Cloneflags: syscall.CLONE_NEWPID | syscall.CLONE_NEWNS,
		Pdeathsig:  syscall.SIGKILL,
	}
	return cmd
}

// MountOwnProc, run in a child started by [PidNSCommand], makes every mount
// of its mount namespace private (nothing propagates back to the host) and
// mounts a procfs of its pid namespace on /proc.
func MountOwnProc() error {
	if err := syscall.Mount("", "/", "", syscall.MS_REC|syscall.MS_PRIVATE, ""); err != nil {
		return fmt.Errorf("make mounts private: %w", err)
	}
	if err := syscall.Mount("proc", "/proc", "proc", syscall.MS_NOSUID|syscall.MS_NODEV|syscall.MS_NOEXEC, ""); err != nil {
		return fmt.Errorf("mount proc: %w", err)
	}
	return nil
}

// SetNextPid makes the calling process's pid namespace hand out pid next
// (when it is free) to the next process created in it, by writing next-1 to
// /proc/sys/kernel/ns_last_pid. It needs CAP_SYS_ADMIN over the namespace,
// and nothing else may fork or start a thread in the namespace meanwhile
// (so start no other process in it first; see [PidTakenReport]).
func SetNextPid(next int) error {
	if next < 2 {
		return fmt.Errorf("set next pid %d: must be at least 2", next)
	}
	// The os package probes pidfd support once, at the process's first
	// process operation (os.StartProcess, os.FindProcess), by cloning a
	// child that exits at once: after the write that probe would take
	// next, and the process the caller then starts next+1. Run it now.
	if p, err := os.FindProcess(os.Getpid()); err == nil {
		_ = p.Release()
	}
	if err := os.WriteFile("/proc/sys/kernel/ns_last_pid", []byte(strconv.Itoa(next-1)), 0); err != nil {
		return fmt.Errorf("set next pid %d: %w", next, err)
	}
	return nil
}

// RunNSChild starts cmd (from [PidNSCommand]), passes each line it prints
// to onLine (which may write to the child's stdin through tell), waits for
// it and returns its output; it fails t if the child fails. Cleanup kills
// it by pid, which ends its whole pid namespace.
func RunNSChild(t testing.TB, cmd *exec.Cmd, onLine func(line string, tell io.Writer)) string {
	t.Helper()
	stdin, err := cmd.StdinPipe()
	if err != nil {
		t.Fatal(err)
	}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = cmd.Process.Kill(); _ = cmd.Wait() })
	var all strings.Builder
	sc := bufio.NewScanner(stdout)
	for sc.Scan() {
		all.WriteString(sc.Text() + "\n")
		onLine(sc.Text(), stdin)
	}
	stdin.Close()
	if err := cmd.Wait(); err != nil {
		t.Fatalf("namespace child failed: %v; its report:\n%s", err, all.String())
	}
	return all.String()
}

// InitDecoyNS, run first in a child started by [PidNSCommand] whose
// argument arg is the init-namespace pid N of a live host process (the
// decoy), checks that N is a number of at least 100 and mounts the
// namespace's own /proc ([MountOwnProc]). It returns N.
func InitDecoyNS(arg string) (int, error) {
	n, err := strconv.Atoi(arg)
	if err != nil || n < 100 {
		return 0, fmt.Errorf("decoy pid %q: want a number ≥ 100", arg)
	}
	return n, MountOwnProc()
}

// AwaitParent reads one line from stdin, in a child, and fails unless it
// is want.
func AwaitParent(want string) error {
	if line, _ := bufio.NewReader(os.Stdin).ReadString('\n'); line != want+"\n" {
		return fmt.Errorf("parent said %q, want %s", line, want)
	}
	return nil
}

// StartReadyChild, in a child, starts the test binary again in role with
// args (its stdin a pipe kept open, so that a child that lives until stdin
// closes lives on) and returns it with the first line it prints. If that
// line cannot be read it kills and reaps the child.
func StartReadyChild(role string, args ...string) (*exec.Cmd, string, error) {
	exe, err := os.Executable()
	if err != nil {
		return nil, "", err
	}
	cmd := exec.Command(exe, append([]string{"-test.run=^$", "--"}, args...)...)
	cmd.Env = append(os.Environ(), childEnv+"="+role)
	cmd.Stderr = os.Stderr
	if _, err := cmd.StdinPipe(); err != nil {
		return nil, "", err
	}
	out, err := cmd.StdoutPipe()
	if err != nil {
		return nil, "", err
	}
	if err := cmd.Start(); err != nil {
		return nil, "", err
	}
	line, err := bufio.NewReader(out).ReadString('\n')
	if err != nil {
		_ = cmd.Process.Kill()
		_ = cmd.Wait()
		return nil, line, fmt.Errorf("read ready line: %w", err)
	}
	return cmd, line, nil
}

// FailReport, in a child that reports to its parent on stdout, prints
// "fail: " and the formatted reason and returns exit code 1.
func FailReport(format string, a ...any) int {
	fmt.Printf("fail: "+format+"\n", a...)
	return 1
}

// PidTakenReport is what a namespace child prints (exiting 0) when the pid
// it set with [SetNextPid] went to another task than the process it
// started ([PidTaken]). Threads take pids from the same counter as
// processes, and the Go runtime of every process in the namespace (the
// child itself, and any Go child it started before) may create one between
// the write to ns_last_pid and the fork; nothing in os/exec can ask the
// kernel for an exact pid (clone3's set_tid), so the race cannot be closed,
// only made rare (start no other process in the namespace first) and
// detected. A thread keeps its pid while it lives, so the parent runs the
// test again with a new decoy (a new pid).
const PidTakenReport = "retry: the pid went to another task"

// PidTaken, in a namespace child whose process did not get the pid n it
// set with [SetNextPid], says which task has n in the namespace and whether
// that is the race [PidTakenReport] describes: n is a thread of some
// process in the namespace, or the task that took it has already exited
// (only threads come and go there unasked). A process at n is not that
// race (race false): something else forked in the namespace.
func PidTaken(n int) (who string, race bool) {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(n) + "/status")
	if err != nil {
		return fmt.Sprintf("no task (%v): the one that took it exited", err), true
	}
	var name, tgid string
	for line := range strings.SplitSeq(string(b), "\n") {
		if v, ok := strings.CutPrefix(line, "Name:"); ok {
			name = strings.TrimSpace(v)
		} else if v, ok := strings.CutPrefix(line, "Tgid:"); ok {
			tgid = strings.TrimSpace(v)
		}
	}
	if tgid != strconv.Itoa(n) {
		return fmt.Sprintf("thread %d of process %s (%s)", n, tgid, name), true
	}
	return fmt.Sprintf("process %d (%s)", n, name), false
}
