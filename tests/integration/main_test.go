//go:build integration

// Package integration is Parallax's multi-process suite: it builds the real
// parallax-roudi binary, starts one router per test (own domain, own socket
// under t.TempDir()) and runs publishers and subscribers as separate
// processes (re-executions of this test binary, see children_test.go).
//
//	go test -race -tags integration ./tests/...
//
// With -parallax.no-daemon the binary is neither built nor started: every
// test runs against an in-process router (internal/routertest) instead,
// which also lets the tests audit the router's pools at the end. Under
// -short the whole suite is skipped.
package integration

import (
	"flag"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"testing"

	"github.com/parallax-ipc/parallax/internal/testutil"
)

var noDaemon = flag.Bool("parallax.no-daemon", false, "do not build or start parallax-roudi; use in-process routers")

// roudiBin is the path through which tests execute the freshly built
// parallax-roudi ("" with -parallax.no-daemon).
//
// testutil.Main ends with os.Exit, so TestMain cannot remove a build
// directory afterwards. Instead it keeps the binary open, removes the
// directory at once, and executes the binary through /proc/<pid>/fd/<n>,
// which stays valid while this process lives. The fd is opened before
// testutil.Main counts fds, so it is not a leak.
var roudiBin string

func TestMain(m *testing.M) {
	testutil.ChildMain(childRoles)
	flag.Parse()
	if testing.Short() {
		fmt.Fprintln(os.Stderr, "integration: skipped under -short")
		os.Exit(0)
	}
	if !*noDaemon {
		f, err := buildRoudi()
		if err != nil {
			fmt.Fprintf(os.Stderr, "integration: %v\n", err)
			os.Exit(1)
		}
		roudiBin = fmt.Sprintf("/proc/%d/fd/%d", os.Getpid(), f.Fd())
		defer f.Close() // kept open for the whole run (os.Exit skips this)
	}
	// The CLI and the example plugin are built here, before testutil.Main
	// counts fds, and removed after the tests.
	dir, err := buildCLIAndPlugin()
	if err != nil {
		fmt.Fprintf(os.Stderr, "integration: %v\n", err)
		os.Exit(1)
	}
	testutil.MainWithCleanup(m, func() { os.RemoveAll(dir) })
}

// buildRoudi builds cmd/parallax-roudi (with -race, like the suite) and
// returns the open binary; its directory is already removed.
func buildRoudi() (*os.File, error) {
	dir, err := os.MkdirTemp("", "parallax-integration-")
	if err != nil {
		return nil, fmt.Errorf("build parallax-roudi: %w", err)
	}
	defer os.RemoveAll(dir)
	bin := filepath.Join(dir, "parallax-roudi")
	build := exec.Command("go", "build", "-race", "-o", bin, "github.com/parallax-ipc/parallax/cmd/parallax-roudi")
	build.Stdout, build.Stderr = os.Stderr, os.Stderr
	if err := build.Run(); err != nil {
		return nil, fmt.Errorf("build parallax-roudi: %w", err)
	}
	f, err := os.Open(bin)
	if err != nil {
		return nil, fmt.Errorf("open built parallax-roudi: %w", err)
	}
	return f, nil
}
