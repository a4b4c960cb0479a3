package procmon

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"os"
	"runtime"
	"strings"
	"testing"

	"github.com/parallax-ipc/parallax"
	"github.com/parallax-ipc/parallax/internal/testutil"
)

func TestMain(m *testing.M) {
	testutil.ChildMain(map[string]func([]string) int{
		"threads": threadsChild,
		"probe":   probeChild,
		// pidns_test.go
		"pidns-monitor": pidnsMonitorChild,
	})
	testutil.Main(m)
}

// childThreads is how many extra OS threads a "threads" child pins, so
// that it is a multi-threaded process whose threads exit one by one.
const childThreads = 4

// threadsChild pins childThreads goroutines to their own OS threads, prints
// "ready <threads>" and waits for stdin to close (or to be killed).
func threadsChild([]string) int {
	locked := make(chan struct{})
	for range childThreads {
		go func() {
			runtime.LockOSThread()
			locked <- struct{}{}
			select {}
		}()
	}
	for range childThreads {
		<-locked
	}
	fmt.Printf("ready %d\n", threadCount())
	_, _ = io.Copy(io.Discard, os.Stdin)
	return 0
}

// threadCount reads Threads from /proc/self/status.
func threadCount() int {
	f, err := os.Open("/proc/self/status")
	if err != nil {
		return 0
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if rest, ok := strings.CutPrefix(sc.Text(), "Threads:"); ok {
			var n int
			_, _ = fmt.Sscan(rest, &n)
			return n
		}
	}
	return 0
}

// probeChild creates monitors the way the router does and prints what it
// got, one "key value" line each:
//
//	auto-kind <kind>
//	auto-reason <reason>
//	ebpf-err notsupported=<bool> permission=<bool> <message>
//	pidfd-kind <kind>
func probeChild([]string) int {
	m, err := New(ModeAuto)
	if err != nil {
		fmt.Printf("auto-err %v\n", err)
		return 1
	}
	fmt.Printf("auto-kind %s\n", m.Kind())
	fmt.Printf("auto-reason %s\n", FallbackReason(m))
	m.Close()
	if m, err := New(ModeEBPF); err != nil {
		fmt.Printf("ebpf-err notsupported=%t permission=%t %v\n",
			errors.Is(err, parallax.ErrNotSupported), errors.Is(err, os.ErrPermission), err)
	} else {
		fmt.Printf("ebpf-kind %s\n", m.Kind())
		m.Close()
	}
	p, err := New(ModePidfd)
	if err != nil {
		fmt.Printf("pidfd-err %v\n", err)
		return 1
	}
	fmt.Printf("pidfd-kind %s\n", p.Kind())
	p.Close()
	return 0
}

func fmtSscan(s string, v *int) (int, error) { return fmt.Sscan(s, v) }
