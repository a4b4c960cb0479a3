package testutil

import (
	"fmt"
	"os"
	"os/exec"
	"testing"
)

// childEnv names the environment variable that tells a re-executed test
// binary which child role to play.
const childEnv = "PARALLAX_TEST_CHILD"

// ChildMain dispatches a re-executed test binary to its child role. Call it
// first in TestMain: when the process is a child it runs roles[name] and
// exits with its status; otherwise it returns and the tests run as usual.
//
// A role function receives its arguments (after "--") and returns an exit
// code. Children write diagnostics to stderr.
func ChildMain(roles map[string]func(args []string) int) {
	name := os.Getenv(childEnv)
	if name == "" {
		return
	}
	fn, ok := roles[name]
	if !ok {
		fmt.Fprintf(os.Stderr, "testutil: unknown child role %q\n", name)
		os.Exit(2)
	}
	args := os.Args[1:]
	for i, a := range args {
		if a == "--" {
			args = args[i+1:]
			break
		}
	}
	os.Exit(fn(args))
}

// ChildCommand returns a command that re-executes the current test binary in
// the named child role with args. Files in extra become fds 3, 4, ... in the
// child (exec.Cmd.ExtraFiles). The caller starts and waits for it.
func ChildCommand(t testing.TB, role string, extra []*os.File, args ...string) *exec.Cmd {
	t.Helper()
	exe, err := os.Executable()
	if err != nil {
		t.Fatalf("find test binary: %v", err)
	}
	cmd := exec.Command(exe, append([]string{"-test.run=^$", "--"}, args...)...)
	cmd.Env = append(os.Environ(), childEnv+"="+role)
	cmd.ExtraFiles = extra
	cmd.Stderr = os.Stderr
	return cmd
}
