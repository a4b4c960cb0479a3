package testhook_test

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/parallax-ipc/parallax/internal/testhook"
	"github.com/parallax-ipc/parallax/internal/testutil"
)

func TestMain(m *testing.M) {
	testutil.ChildMain(map[string]func([]string) int{"hooked": hookedChild})
	_, _ = os.ReadFile("/proc/self/stat") // start the netpoller before the fd count
	testutil.Main(m)
}

// hookedChild passes hook "other", then reaches hook "target", printing a
// line on stdout after each.
func hookedChild([]string) int {
	testhook.Stop("other")
	fmt.Println("passed other")
	testhook.Stop("target")
	fmt.Println("passed target")
	return 0
}

// TestStop runs a child that reaches hooks "other" and "target" with
// PARALLAX_TESTHOOK=target and a pipe as fd 3. Built with the
// parallax_testhook tag, the child passes "other", writes "hook target" to
// the pipe and stops there until the parent SIGKILLs it by PID; without
// the tag it runs through and the pipe stays empty.
func TestStop(t *testing.T) {
	t.Parallel()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	pr, pw, err := os.Pipe()
	require.NoError(t, err)
	defer pr.Close()
	cmd := testutil.ChildCommand(t, "hooked", []*os.File{pw})
	cmd.Env = append(cmd.Env, testhook.EnvVar+"=target")
	out, err := cmd.StdoutPipe()
	require.NoError(t, err)
	require.NoError(t, cmd.Start())
	pw.Close() // the child holds the only write end: EOF once it is gone
	waited := false
	defer func() {
		if !waited {
			_ = cmd.Process.Kill()
			_ = cmd.Wait()
		}
	}()

	lines := make(chan string, 1)
	go func() {
		l, _ := bufio.NewReader(pr).ReadString('\n')
		lines <- l
	}()
	if !testhook.Enabled {
		stdout, err := io.ReadAll(out)
		require.NoError(t, err)
		require.NoError(t, cmd.Wait())
		waited = true
		require.Equal(t, "passed other\npassed target\n", string(stdout))
		select {
		case l := <-lines:
			require.Empty(t, l, "a hook wrote to fd 3 without the parallax_testhook tag")
		case <-ctx.Done():
			t.Fatal("the pipe did not reach EOF")
		}
		return
	}

	var line string
	select {
	case line = <-lines:
	case <-ctx.Done():
		t.Fatal("no hook line from the child")
	}
	require.Equal(t, "hook target\n", line)
	// Stopped: it passed "other" and nothing after "target" ran.
	r := bufio.NewReader(out)
	first, err := r.ReadString('\n')
	require.NoError(t, err)
	require.Equal(t, "passed other\n", first)
	require.NoError(t, syscall.Kill(cmd.Process.Pid, 0), "the stopped child is alive")
	require.NoError(t, syscall.Kill(cmd.Process.Pid, syscall.SIGKILL))
	rest, err := io.ReadAll(r)
	require.NoError(t, err)
	require.Empty(t, strings.TrimSpace(string(rest)), "the child ran past the hook")
	err = cmd.Wait()
	waited = true
	var ee *exec.ExitError
	require.True(t, errors.As(err, &ee), "wait: %v", err)
	ws := ee.Sys().(syscall.WaitStatus)
	require.True(t, ws.Signaled() && ws.Signal() == syscall.SIGKILL, "child ended with %v, want SIGKILL", ws)
}

// BenchmarkStop measures a hook call that does not stop: without the tag
// it inlines to nothing (well under a nanosecond); with it, a string
// comparison.
func BenchmarkStop(b *testing.B) {
	b.ReportAllocs()
	for b.Loop() {
		testhook.Stop("loan.popped")
	}
}
