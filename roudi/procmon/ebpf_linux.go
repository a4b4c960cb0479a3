//go:build linux

package procmon

import (
	"encoding/binary"
	"errors"
	"fmt"
	"os"
	"runtime"
	"sync"
	"time"

	"github.com/cilium/ebpf"
	"github.com/cilium/ebpf/asm"
	"github.com/cilium/ebpf/link"
	"github.com/cilium/ebpf/ringbuf"

	"github.com/parallax-ipc/parallax"
	"github.com/parallax-ipc/parallax/internal/sys"
)

// ringSize is the BPF ring buffer's size in bytes (a power of two, a
// multiple of the page size). A record takes 24 bytes with its header, so
// it holds about 10 000 exits the reader has not consumed yet.
const ringSize = 256 << 10

// recordSize is the size of one exit record: the exiting thread's
// pid_tgid (tgid in the upper half) and its bpf_ktime_get_ns
// (CLOCK_MONOTONIC) at exit.
const recordSize = 16

// exitProgram returns the instructions of the program attached to the raw
// tracepoint sched_process_exit, whose context is the tracepoint's
// arguments as u64s: (struct task_struct *p, bool group_dead). It runs in
// the exiting thread, once per thread; only the last thread of a thread
// group has group_dead set, so filtering on it yields one record per
// process.
func exitProgram(ringFD int) asm.Instructions {
	return asm.Instructions{
		// r6 = group_dead (ctx[1]); skip thread exits.
		asm.LoadMem(asm.R6, asm.R1, 8, asm.DWord),
		asm.JEq.Imm(asm.R6, 0, "out"),
		// fp[-16] = bpf_get_current_pid_tgid()
		asm.FnGetCurrentPidTgid.Call(),
		asm.StoreMem(asm.RFP, -16, asm.R0, asm.DWord),
		// fp[-8] = bpf_ktime_get_ns()
		asm.FnKtimeGetNs.Call(),
		asm.StoreMem(asm.RFP, -8, asm.R0, asm.DWord),
		// bpf_ringbuf_output(&ring, fp-16, 16, 0)
		asm.LoadMapPtr(asm.R1, ringFD),
		asm.Mov.Reg(asm.R2, asm.RFP),
		asm.Add.Imm(asm.R2, -16),
		asm.Mov.Imm(asm.R3, recordSize),
		asm.Mov.Imm(asm.R4, 0),
		asm.FnRingbufOutput.Call(),
		asm.Mov.Imm(asm.R0, 0).WithSymbol("out"),
		asm.Return(),
	}
}

// exitTracer owns the kernel objects: the ring buffer map, the program,
// its raw tracepoint link and the ring reader.
type exitTracer struct {
	ring *ebpf.Map
	prog *ebpf.Program
	link link.Link
	rd   *ringbuf.Reader
}

func newExitTracer() (_ *exitTracer, err error) {
	t := &exitTracer{}
	defer func() {
		if err != nil {
			t.Close()
		}
	}()
	t.ring, err = ebpf.NewMap(&ebpf.MapSpec{Name: "plx_exits", Type: ebpf.RingBuf, MaxEntries: ringSize})
	if err != nil {
		return nil, fmt.Errorf("create ring buffer map: %w", err)
	}
	t.prog, err = ebpf.NewProgram(&ebpf.ProgramSpec{
		Name:         "plx_exit",
		Type:         ebpf.RawTracepoint,
		Instructions: exitProgram(t.ring.FD()),
		License:      "GPL",
	})
	if err != nil {
		return nil, fmt.Errorf("load exit program: %w", err)
	}
	t.link, err = link.AttachRawTracepoint(link.RawTracepointOptions{Name: "sched_process_exit", Program: t.prog})
	if err != nil {
		return nil, fmt.Errorf("attach to raw tracepoint sched_process_exit: %w", err)
	}
	t.rd, err = ringbuf.NewReader(t.ring)
	if err != nil {
		return nil, fmt.Errorf("open ring buffer reader: %w", err)
	}
	return t, nil
}

// Close detaches the program and releases every kernel object. Closing the
// reader first makes a blocked Read return os.ErrClosed.
func (t *exitTracer) Close() error {
	var errs []error
	if t.rd != nil {
		errs = append(errs, t.rd.Close())
	}
	if t.link != nil {
		errs = append(errs, t.link.Close())
	}
	if t.prog != nil {
		errs = append(errs, t.prog.Close())
	}
	if t.ring != nil {
		errs = append(errs, t.ring.Close())
	}
	return errors.Join(errs...)
}

// ebpfProbe loads, attaches and releases the tracer once per process; its
// result decides whether eBPF is available.
var ebpfProbe = sync.OnceValue(func() error {
	t, err := newExitTracer()
	if err != nil {
		return err
	}
	return t.Close()
})

// CheckEBPF reports whether this process can run the eBPF monitor: nil, or
// an error wrapping parallax.ErrNotSupported and the cause (os.ErrPermission
// without CAP_BPF/CAP_PERFMON). The probe runs once per process.
func CheckEBPF() error {
	if err := ebpfProbe(); err != nil {
		if errors.Is(err, os.ErrPermission) {
			// The kernel's "MEMLOCK may be too low" hint is misleading:
			// with memcg accounting the cause is a missing capability.
			return fmt.Errorf("ebpf process monitor: %w: no permission to load BPF programs (needs CAP_BPF and CAP_PERFMON, or root): %w", parallax.ErrNotSupported, err)
		}
		return fmt.Errorf("ebpf process monitor: %w: %w", parallax.ErrNotSupported, err)
	}
	return nil
}

// ebpfMonitor reports exits seen by the exit tracer for the watched pids.
// One goroutine reads the ring; it owns the tracer's reader.
//
// Lock order: mu is a leaf; no send on events happens under it.
type ebpfMonitor struct {
	t      *exitTracer
	events chan Exit
	done   chan struct{}
	// trace, when set (tests), sees every record's tgid before filtering.
	trace func(tgid int32, ktimeNs uint64)

	mu      sync.Mutex
	watched map[int32]struct{} // nil after Close

	wg     sync.WaitGroup // the reader and late reports
	closed closeOnce
}

func newEBPF(trace func(tgid int32, ktimeNs uint64)) (_ *ebpfMonitor, err error) {
	if err := CheckEBPF(); err != nil {
		return nil, err
	}
	t, err := newExitTracer()
	if err != nil {
		return nil, fmt.Errorf("ebpf process monitor: %w", err)
	}
	m := &ebpfMonitor{
		t:       t,
		events:  make(chan Exit, eventBuffer),
		done:    make(chan struct{}),
		trace:   trace,
		watched: make(map[int32]struct{}),
	}
	m.wg.Add(1)
	go m.read()
	return m, nil
}

func (m *ebpfMonitor) Kind() string        { return KindEBPF }
func (m *ebpfMonitor) Events() <-chan Exit { return m.events }

// read decodes ring records until Close. It allocates nothing per record
// for exits of unwatched processes (the common case: every exit on the
// host passes through).
func (m *ebpfMonitor) read() {
	defer m.wg.Done()
	var rec ringbuf.Record
	for {
		if err := m.t.rd.ReadInto(&rec); err != nil {
			if errors.Is(err, os.ErrDeadlineExceeded) || errors.Is(err, ringbuf.ErrFlushed) {
				continue // neither is used; harmless
			}
			return // os.ErrClosed from Close (nothing else is expected)
		}
		if len(rec.RawSample) < recordSize {
			continue
		}
		tgid := int32(binary.NativeEndian.Uint64(rec.RawSample) >> 32)
		if m.trace != nil {
			m.trace(tgid, binary.NativeEndian.Uint64(rec.RawSample[8:]))
		}
		m.report(tgid, KindEBPF, exitTime(binary.NativeEndian.Uint64(rec.RawSample[8:])))
	}
}

// report sends the exit of pid if it is watched, and ends the watch.
func (m *ebpfMonitor) report(pid int32, source string, at time.Time) {
	m.mu.Lock()
	if _, ok := m.watched[pid]; !ok {
		m.mu.Unlock()
		return
	}
	delete(m.watched, pid)
	m.mu.Unlock()
	select {
	case m.events <- Exit{PID: pid, Source: source, At: at}:
		// The receiver is now runnable, likely queued on this P; the
		// reader's next step is a blocking epoll_wait that keeps the P
		// until sysmon retakes it (up to 10 ms on an idle process). Let
		// the receiver run first.
		runtime.Gosched()
	case <-m.done:
	}
}

// Watch records pid and then checks, with the pidfd, that the process is
// still alive: an exit traced before the pid was recorded would otherwise be
// missed. Either path reports, never both.
func (m *ebpfMonitor) Watch(pid int32, pidfd *os.File) error {
	if pid <= 0 {
		closeFile(pidfd)
		return fmt.Errorf("watch pid %d: %w: must be positive", pid, ErrInvalidPID)
	}
	m.mu.Lock()
	if m.watched == nil {
		m.mu.Unlock()
		closeFile(pidfd)
		return fmt.Errorf("watch pid %d: %w", pid, os.ErrClosed)
	}
	_, dup := m.watched[pid]
	m.watched[pid] = struct{}{}
	m.wg.Add(1) // under mu: Close cannot be waiting yet
	m.mu.Unlock()
	defer m.wg.Done()
	if dup {
		closeFile(pidfd)
		return nil
	}
	gone, err := exited(pid, pidfd)
	if err != nil {
		m.Unwatch(pid)
		return fmt.Errorf("watch pid %d: %w", pid, err)
	}
	if gone {
		// Report from another goroutine: the caller may be the one
		// receiving Events.
		m.wg.Add(1)
		go func() { defer m.wg.Done(); m.report(pid, "pidfd-check", time.Now()) }()
	}
	return nil
}

// exitTime converts the tracer's bpf_ktime_get_ns (CLOCK_MONOTONIC) to a
// time.Time: now minus how long ago that was. A timestamp that is not in
// the past (it cannot be, unless the record is garbage) yields now.
func exitTime(ktimeNs uint64) time.Time {
	now := time.Now()
	mono, err := sys.MonotonicNanos()
	if err != nil || ktimeNs > uint64(mono) {
		return now
	}
	return now.Add(-time.Duration(uint64(mono) - ktimeNs))
}

// exited reports whether the process has exited, with its pidfd (closed
// here) or one opened for the check.
func exited(pid int32, pidfd *os.File) (bool, error) {
	if pidfd == nil {
		fd, err := sys.PidfdOpen(int(pid), 0)
		if errors.Is(err, sys.ESRCH) {
			return true, nil
		}
		if err != nil {
			return false, err
		}
		pidfd = os.NewFile(uintptr(fd), "pidfd")
	}
	defer pidfd.Close()
	rc, err := pidfd.SyscallConn()
	if err != nil {
		return false, fmt.Errorf("check pidfd: %w", err)
	}
	var gone bool
	var perr error
	if err := rc.Control(func(fd uintptr) { gone, perr = sys.PidfdExited(int(fd)) }); err != nil {
		return false, fmt.Errorf("check pidfd: %w", err)
	}
	return gone, perr
}

func (m *ebpfMonitor) Unwatch(pid int32) {
	m.mu.Lock()
	delete(m.watched, pid)
	m.mu.Unlock()
}

// Close detaches the program, stops the reader and closes Events.
func (m *ebpfMonitor) Close() error {
	var err error
	m.closed.do(func() {
		close(m.done)
		m.mu.Lock()
		m.watched = nil
		m.mu.Unlock()
		err = m.t.Close()
		m.wg.Wait()
		close(m.events)
	})
	return err
}
