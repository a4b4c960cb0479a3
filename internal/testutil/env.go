package testutil

import (
	"bufio"
	"fmt"
	"os"
	"strconv"
	"strings"
	"testing"
)

// Strict reports whether PARALLAX_TEST_ROOT=1 is set: missing privileges or
// features then fail tests instead of skipping them.
func Strict() bool { return os.Getenv("PARALLAX_TEST_ROOT") == "1" }

// skipOrFail skips t with msg, or fails it in strict mode.
func skipOrFail(t testing.TB, msg string) {
	t.Helper()
	if Strict() {
		t.Fatalf("PARALLAX_TEST_ROOT=1 but %s", msg)
	}
	t.Skip(msg)
}

// IsRoot reports whether the process runs with effective uid 0.
func IsRoot() bool { return os.Geteuid() == 0 }

// RequiresRoot skips (or, in strict mode, fails) t unless it runs as root.
func RequiresRoot(t testing.TB) {
	t.Helper()
	if !IsRoot() {
		skipOrFail(t, fmt.Sprintf("test needs root (running as uid %d)", os.Geteuid()))
	}
}

// FreeHugepages returns HugePages_Free from /proc/meminfo (2 MiB pages on
// x86-64). memfd_create(MFD_HUGETLB) succeeds even with no free pages; the
// failure only shows later, so tests check this first.
func FreeHugepages() int {
	f, err := os.Open("/proc/meminfo")
	if err != nil {
		return 0
	}
	defer f.Close()
	s := bufio.NewScanner(f)
	for s.Scan() {
		if rest, ok := strings.CutPrefix(s.Text(), "HugePages_Free:"); ok {
			n, err := strconv.Atoi(strings.TrimSpace(rest))
			if err != nil {
				return 0
			}
			return n
		}
	}
	return 0
}

// HasHugepages reports whether at least n default-size hugepages are free.
func HasHugepages(n int) bool { return FreeHugepages() >= n }

// MustHaveHugepages skips (or fails, in strict mode) t unless n default-size
// hugepages are free.
func MustHaveHugepages(t testing.TB, n int) {
	t.Helper()
	if free := FreeHugepages(); free < n {
		skipOrFail(t, fmt.Sprintf("test needs %d free 2 MiB hugepages, HugePages_Free is %d (reserve with: echo N > /proc/sys/vm/nr_hugepages)", n, free))
	}
}

// Free1GHugepages returns the number of free 1 GiB hugepages.
func Free1GHugepages() int {
	b, err := os.ReadFile("/sys/kernel/mm/hugepages/hugepages-1048576kB/free_hugepages")
	if err != nil {
		return 0
	}
	n, _ := strconv.Atoi(strings.TrimSpace(string(b)))
	return n
}
