package testutil

import (
	"fmt"
	"math/rand/v2"
	"os"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/parallax-ipc/parallax/internal/background"
)

// Main runs the tests of m and exits. It counts open fds and Parallax memfd
// mappings before and after; a run that leaks either exits non-zero. Use it
// from TestMain:
//
//	func TestMain(m *testing.M) { testutil.Main(m) }
//
// A child process re-executed by a multi-process test should be dispatched
// before calling Main (see [ChildMain]).
func Main(m *testing.M) { MainWithCleanup(m, nil) }

// MainWithCleanup is Main with a cleanup run after the tests and before the
// leak checks (TestMain cannot run code after Main: it exits). Use it to
// remove what TestMain set up, such as built binaries.
func MainWithCleanup(m *testing.M, cleanup func()) {
	// Warm up the runtime netpoller (its epoll fd and eventfd are created on
	// first use of os.File I/O) so they are not counted as leaks.
	warmUp()
	fds0 := countFDs()
	maps0 := countMemfdMaps()
	code := m.Run()
	if cleanup != nil {
		cleanup()
	}
	if code == 0 {
		// Give finalizer-driven closes (runtime.AddCleanup backstops) no
		// say: a leak is a leak. But the client library finishes some work
		// after the calls that started it returned (package background):
		// wait for it, then count; and a third-party sampler may hold an
		// fd for an instant (nats-server, linked into the gateway tests,
		// reads /proc/<pid>/stat every second), so a count above the
		// first is taken again for up to transientWait.
		if !background.Wait(backgroundWait) {
			fmt.Fprintf(os.Stderr, "testutil: %d pieces of the client library's background work still run %v after the tests\n",
				background.Running(), backgroundWait)
			code = 1
		}
		settle(fds0, maps0)
		if fds1 := countFDs(); fds1 > fds0 {
			fmt.Fprintf(os.Stderr, "testutil: fd leak: %d open fds before the tests, %d after\n%s", fds0, fds1, listFDs())
			code = 1
		}
		if maps1 := countMemfdMaps(); maps1 > maps0 {
			fmt.Fprintf(os.Stderr, "testutil: mapping leak: %d parallax memfd mappings before the tests, %d after\n", maps0, maps1)
			code = 1
		}
	}
	os.Exit(code)
}

// backgroundWait bounds how long Main waits for the client library's
// background work: once the router answered, each piece ends within its
// own timeouts (5 s for an undo; a runtime's disconnect waits for its
// releases, 5 s more at most).
const backgroundWait = 10 * time.Second

// transientWait bounds how long Main takes the fd and mapping counts
// again while they are above those before the tests.
const transientWait = time.Second

// settle waits until the fd and mapping counts are back to fds and maps,
// or transientWait passed.
func settle(fds, maps int) {
	deadline := time.Now().Add(transientWait)
	for (countFDs() > fds || countMemfdMaps() > maps) && time.Now().Before(deadline) {
		time.Sleep(5 * time.Millisecond)
	}
}

func warmUp() {
	r, w, err := os.Pipe()
	if err == nil {
		_ = r.SetReadDeadline(time.Now())
		_, _ = r.Read(make([]byte, 1))
		r.Close()
		w.Close()
	}
	_, _ = os.ReadFile("/proc/self/maps")
}

func countFDs() int {
	ents, err := os.ReadDir("/proc/self/fd")
	if err != nil {
		return 0
	}
	return len(ents)
}

func listFDs() string {
	ents, err := os.ReadDir("/proc/self/fd")
	if err != nil {
		return ""
	}
	var b strings.Builder
	for _, e := range ents {
		target, _ := os.Readlink("/proc/self/fd/" + e.Name())
		fmt.Fprintf(&b, "  fd %s -> %s\n", e.Name(), target)
	}
	return b.String()
}

func countMemfdMaps() int {
	b, err := os.ReadFile("/proc/self/maps")
	if err != nil {
		return 0
	}
	return strings.Count(string(b), "/memfd:parallax")
}

// Seed returns the seed for randomised tests: PARALLAX_TEST_SEED when set,
// otherwise a fresh one. It logs the seed so a failure can be reproduced.
func Seed(t testing.TB) uint64 {
	t.Helper()
	if s := os.Getenv("PARALLAX_TEST_SEED"); s != "" {
		v, err := strconv.ParseUint(s, 10, 64)
		if err != nil {
			t.Fatalf("PARALLAX_TEST_SEED=%q: %v", s, err)
		}
		t.Logf("PARALLAX_TEST_SEED=%d (from environment)", v)
		return v
	}
	v := uint64(time.Now().UnixNano())
	t.Logf("PARALLAX_TEST_SEED=%d", v)
	return v
}

// Rand returns a generator seeded with [Seed].
func Rand(t testing.TB) *rand.Rand {
	s := Seed(t)
	return rand.New(rand.NewPCG(s, s^0x9e3779b97f4a7c15))
}
