package segment_test

import (
	"errors"
	"fmt"
	"os"
	"runtime/debug"
	"strconv"
	"testing"

	"github.com/parallax-ipc/parallax/internal/sys"
	"github.com/parallax-ipc/parallax/internal/testutil"
	"github.com/parallax-ipc/parallax/segment"
)

func TestMain(m *testing.M) {
	testutil.ChildMain(map[string]func([]string) int{
		"ftruncate": childFtruncate,
		"mapwrite":  childMapWrite,
		"rowrite":   childReadOnlyWrite,
	})
	testutil.Main(m)
}

// childFd is the fd a child receives its segment on (first ExtraFiles entry).
const childFd = 3

// childFtruncate tries to shrink and grow the memfd on fd 3. It exits 0
// when the kernel refused both with EPERM (the seals hold across processes).
func childFtruncate(args []string) int {
	size, _ := strconv.ParseInt(args[0], 10, 64)
	for _, n := range []int64{0, size / 2, size * 2} {
		err := sys.Ftruncate(childFd, n)
		if !errors.Is(err, sys.EPERM) {
			fmt.Fprintf(os.Stderr, "child: ftruncate(%d) = %v, want EPERM\n", n, err)
			return 1
		}
	}
	fmt.Println("EPERM")
	return 0
}

// childMapWrite opens the segment on fd 3 as a client would, checks the
// parent's pattern and writes its own answer after it.
func childMapWrite(args []string) int {
	size, _ := strconv.ParseInt(args[0], 10, 64)
	seg, err := segment.Open(os.NewFile(childFd, "segment"), segment.OpenOptions{ExpectedSize: size, RequireSeals: true})
	if err != nil {
		fmt.Fprintln(os.Stderr, "child:", err)
		return 1
	}
	defer seg.Close()
	b := seg.Bytes()
	for i := range 4096 {
		if b[i] != byte(i*7) {
			fmt.Fprintf(os.Stderr, "child: byte %d = %d, want %d\n", i, b[i], byte(i*7))
			return 1
		}
	}
	copy(b[4096:], "written by child")
	b[len(b)-1] = 0xAB
	return 0
}

// childReadOnlyWrite maps the read-only fd 3 read-only and tries to write
// to it. It exits 0 when the write faulted and 1 if it went through.
func childReadOnlyWrite(args []string) int {
	seg, err := segment.Open(os.NewFile(childFd, "segment"), segment.OpenOptions{ReadOnly: true})
	if err != nil {
		fmt.Fprintln(os.Stderr, "child:", err)
		return 2
	}
	defer seg.Close()
	faulted := func() (faulted bool) {
		debug.SetPanicOnFault(true)
		defer func() {
			if r := recover(); r != nil {
				faulted = true
				fmt.Printf("fault: %v\n", r)
			}
		}()
		seg.Bytes()[0] = 0xFF
		return false
	}()
	if !faulted {
		fmt.Fprintln(os.Stderr, "child: write to read-only segment succeeded")
		return 1
	}
	return 0
}
