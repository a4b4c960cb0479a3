package ringbuf_test

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"strconv"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/parallax-ipc/parallax"
	"github.com/parallax-ipc/parallax/internal/sys"
	"github.com/parallax-ipc/parallax/internal/testutil"
	"github.com/parallax-ipc/parallax/ringbuf"
)

// Cross-process layout of the test region: notifier, then the ring.
const mpRingOff = 128

// TestCrossProcess runs the producer in a re-executed child process over a
// shared memfd mapping and the consumer here, sleeping on the notifier's
// futex. It checks the same invariant as TestStress.
func TestCrossProcess(t *testing.T) {
	t.Parallel()
	n := 50_000
	if testing.Short() {
		n = 5_000
	}
	for _, c := range []struct {
		policy   ringbuf.Policy
		capacity int
	}{
		{ringbuf.DiscardOldest, 8},
		{ringbuf.BlockProducer, 8},
	} {
		t.Run(fmt.Sprintf("policy=%v/cap=%d", c.policy, c.capacity), func(t *testing.T) {
			t.Parallel()
			size := mpRingOff + ringbuf.Size(c.capacity)
			fd, err := sys.MemfdCreate("parallax-ringbuf-test", sys.MFD_CLOEXEC|sys.MFD_ALLOW_SEALING)
			if errors.Is(err, parallax.ErrNotSupported) {
				t.Skipf("memfd not available here: %v", err)
			}
			require.NoError(t, err)
			f := os.NewFile(uintptr(fd), "ringbuf-test")
			defer f.Close()
			require.NoError(t, sys.Ftruncate(fd, int64(size)))
			mem, err := sys.Mmap(fd, 0, size, 0, sys.PROT_READ|sys.PROT_WRITE, sys.MAP_SHARED)
			require.NoError(t, err)
			defer func() { require.NoError(t, sys.Munmap(mem)) }()

			nt, err := ringbuf.FormatNotifier(mem[:mpRingOff])
			require.NoError(t, err)
			r, err := ringbuf.Format(mem[mpRingOff:], c.capacity, c.policy)
			require.NoError(t, err)

			cmd := testutil.ChildCommand(t, "producer", []*os.File{f}, strconv.Itoa(size), strconv.Itoa(n))
			out, err := cmd.StdoutPipe()
			require.NoError(t, err)
			require.NoError(t, cmd.Start())
			defer killIfRunning(cmd)
			discardedCh := make(chan []int, 1)
			go func() {
				var ds []int
				s := bufio.NewScanner(out)
				for s.Scan() {
					v, err := strconv.Atoi(s.Text())
					if err == nil {
						ds = append(ds, v)
					}
				}
				discardedCh <- ds
			}()

			var popped []parallax.ChunkRef
			ready := func() bool { return r.Len() > 0 || r.Closed() }
			for {
				if v, ok := popOK(r.TryPop()); ok {
					popped = append(popped, v)
					continue
				}
				if r.Closed() { // the child closes the ring when done
					for v, ok := popOK(r.TryPop()); ok; v, ok = popOK(r.TryPop()) {
						popped = append(popped, v)
					}
					break
				}
				require.NoError(t, nt.Wait(context.Background(), ready, ringbuf.WaitOptions{Spin: -1}))
			}
			discarded := <-discardedCh
			require.NoError(t, cmd.Wait())

			for i := 1; i < len(popped); i++ {
				require.Less(t, popped[i-1], popped[i], "out of order at %d", i)
			}
			seen := make([]byte, n+1)
			for _, v := range popped {
				seen[v]++
			}
			for _, v := range discarded {
				seen[v]++
			}
			for i := 1; i <= n; i++ {
				require.Equal(t, byte(1), seen[i], "value %d seen %d times", i, seen[i])
			}
			require.Equal(t, uint64(len(discarded)), r.Dropped())
			t.Logf("popped %d, discarded %d, consumer sleeps %d, producer wakes %d",
				len(popped), len(discarded), nt.Stats().Sleeps, nt.Stats().Wakes)
		})
	}
}

// producerChild maps the region passed as fd 3, pushes 1..n, prints every
// discarded value on stdout and closes the ring.
func producerChild(args []string) int {
	if len(args) != 2 {
		fmt.Fprintln(os.Stderr, "producer: want size and n")
		return 2
	}
	size, _ := strconv.Atoi(args[0])
	n, _ := strconv.Atoi(args[1])
	mem, err := sys.Mmap(3, 0, size, 0, sys.PROT_READ|sys.PROT_WRITE, sys.MAP_SHARED)
	if err != nil {
		fmt.Fprintln(os.Stderr, "producer:", err)
		return 1
	}
	defer func() { _ = sys.Munmap(mem) }()
	nt, err := ringbuf.AttachNotifier(mem[:mpRingOff])
	if err != nil {
		fmt.Fprintln(os.Stderr, "producer:", err)
		return 1
	}
	r, err := ringbuf.Attach(mem[mpRingOff:size])
	if err != nil {
		fmt.Fprintln(os.Stderr, "producer:", err)
		return 1
	}
	w := bufio.NewWriter(os.Stdout)
	defer w.Flush()
	for i := 1; i <= n; i++ {
		d, err := r.Push(context.Background(), parallax.ChunkRef(i))
		if err != nil {
			fmt.Fprintln(os.Stderr, "producer:", err)
			return 1
		}
		if d != parallax.NilRef {
			fmt.Fprintln(w, uint64(d))
		}
		if err := nt.Notify(); err != nil {
			fmt.Fprintln(os.Stderr, "producer:", err)
			return 1
		}
	}
	if err := w.Flush(); err != nil {
		return 1
	}
	// Close after flushing: the parent reads stdout to EOF anyway.
	_ = r.Close()
	_ = nt.Notify()
	return 0
}

// killIfRunning kills and reaps the child we started (by its PID) when the
// test failed before waiting for it; a blocked producer would otherwise
// outlive the test.
func killIfRunning(cmd *exec.Cmd) {
	if cmd.ProcessState == nil {
		_ = cmd.Process.Kill()
		_ = cmd.Wait()
	}
}
