//go:build linux

package procmon

import (
	"context"
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
//
// The record names the process by its pid in the router's own pid
// namespace, the one SO_PEERCRED translates client pids into. With ns nil
// (the router runs in the initial pid namespace) that is the init-namespace
// pid_tgid (bpf_get_current_pid_tgid), and every exit on the machine is
// recorded. Otherwise it is the pid_tgid in ns (bpf_get_ns_current_pid_tgid,
// Linux 5.7+), and only exits of processes whose pid namespace is exactly ns
// are recorded: a process of an ancestor or sibling namespace has no number
// there, or another process's; one of a namespace nested below ns is not
// recorded either (the helper only matches its own namespace), which the
// monitor covers with the pidfd.
func exitProgram(ringFD int, ns *pidNS) asm.Instructions {
	insns := asm.Instructions{
		// r6 = group_dead (ctx[1]); skip thread exits.
		asm.LoadMem(asm.R6, asm.R1, 8, asm.DWord),
		asm.JEq.Imm(asm.R6, 0, "out"),
	}
	if ns == nil {
		insns = append(insns,
			// fp[-16] = bpf_get_current_pid_tgid()
			asm.FnGetCurrentPidTgid.Call(),
			asm.StoreMem(asm.RFP, -16, asm.R0, asm.DWord),
		)
	} else {
		insns = append(insns,
			// bpf_get_ns_current_pid_tgid(dev, ino, fp-24, 8) fills
			// struct bpf_pidns_info { u32 pid; u32 tgid; }; non-zero
			// when the task is in another namespace.
			asm.LoadImm(asm.R1, int64(ns.dev), asm.DWord),
			asm.LoadImm(asm.R2, int64(ns.ino), asm.DWord),
			asm.Mov.Reg(asm.R3, asm.RFP),
			asm.Add.Imm(asm.R3, -24),
			asm.Mov.Imm(asm.R4, 8),
			asm.FnGetNsCurrentPidTgid.Call(),
			asm.JNE.Imm(asm.R0, 0, "out"),
			// fp[-16] = tgid << 32 | pid
			asm.LoadMem(asm.R1, asm.RFP, -20, asm.Word),
			asm.LSh.Imm(asm.R1, 32),
			asm.LoadMem(asm.R2, asm.RFP, -24, asm.Word),
			asm.Or.Reg(asm.R1, asm.R2),
			asm.StoreMem(asm.RFP, -16, asm.R1, asm.DWord),
		)
	}
	return append(insns,
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
	)
}

// exitTracer owns the kernel objects: the ring buffer map, the program,
// its raw tracepoint link and the ring reader.
type exitTracer struct {
	ring *ebpf.Map
	prog *ebpf.Program
	link link.Link
	rd   *ringbuf.Reader
}

// newExitTracer loads and attaches the exit program for a router in the
// pid namespace ns (nil: the initial one).
func newExitTracer(ns *pidNS) (_ *exitTracer, err error) {
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
		Instructions: exitProgram(t.ring.FD(), ns),
		License:      "GPL",
	})
	if err != nil && ns != nil {
		// No eBPF then: the plain program's init-namespace pids would
		// name other processes in the router's namespace.
		return nil, fmt.Errorf("load exit program for pid namespace %d (the router is not in the initial pid namespace; needs bpf_get_ns_current_pid_tgid, Linux 5.7+): %w", ns.ino, err)
	}
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
	ns, err := ownPidNS()
	if err != nil {
		return err
	}
	t, err := newExitTracer(ns)
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
// The tracer's numbers are pids of the router's own pid namespace (see
// [exitProgram]), the namespace SO_PEERCRED translates client pids into. A
// pid names one live process of a namespace, so a record for a watched
// number taken after the watch began is the watched process's exit, and is
// reported at once. Two cases are confirmed with the client's pidfd
// instead (they report when the pidfd becomes readable):
//
//   - a record taken before the watch began (ktime < since): it may be the
//     exit of an earlier process with the same number, read late;
//   - in a child namespace, the tracer records only processes whose
//     namespace is exactly the router's; a client in a namespace nested
//     below it (whose SO_PEERCRED pid is still of the router's namespace)
//     is not traced, so every watch there also waits on its pidfd.
//
// Lock order: mu is a leaf; no send on events happens under it.
type ebpfMonitor struct {
	t      *exitTracer
	events chan Exit
	done   chan struct{}
	// trace, when set (tests), sees every record's tgid before filtering.
	trace func(tgid int32, ktimeNs uint64)
	// nested is set when the router is not in the initial pid namespace:
	// exits of nested namespaces' processes are not traced.
	nested bool

	mu      sync.Mutex
	watched map[int32]*ebpfWatch // nil after Close

	wg     sync.WaitGroup // the reader, pidfd waits and late reports
	closed closeOnce
}

// ebpfWatch is one watched process: its non-blocking pidfd, when the watch
// began, and the cancel of the goroutine waiting on the pidfd (nil until
// one is started).
type ebpfWatch struct {
	f *os.File // nil when the process was already reaped at Watch
	// since is CLOCK_MONOTONIC when the watch began, after the process
	// connected: a record of this number taken earlier may be another
	// process's (the number's previous owner).
	since  uint64
	cancel context.CancelFunc
}

func newEBPF(trace func(tgid int32, ktimeNs uint64)) (_ *ebpfMonitor, err error) {
	if err := CheckEBPF(); err != nil {
		return nil, err
	}
	ns, err := ownPidNS()
	if err != nil {
		return nil, fmt.Errorf("ebpf process monitor: %w", err)
	}
	t, err := newExitTracer(ns)
	if err != nil {
		return nil, fmt.Errorf("ebpf process monitor: %w", err)
	}
	m := &ebpfMonitor{
		t:       t,
		events:  make(chan Exit, eventBuffer),
		done:    make(chan struct{}),
		trace:   trace,
		nested:  ns != nil,
		watched: make(map[int32]*ebpfWatch),
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
		ktime := binary.NativeEndian.Uint64(rec.RawSample[8:])
		if m.trace != nil {
			m.trace(tgid, ktime)
		}
		m.traced(tgid, ktime)
	}
}

// traced handles a traced exit of tgid (a pid of the router's namespace).
// When tgid is watched since before ktime, the record is the watched
// process's exit: it is reported at once. An older record may be a
// previous owner's of the number: the watch's pidfd decides (see
// [ebpfMonitor]).
func (m *ebpfMonitor) traced(tgid int32, ktimeNs uint64) {
	m.mu.Lock()
	w, ok := m.watched[tgid]
	m.mu.Unlock()
	if !ok {
		return
	}
	if ktimeNs >= w.since {
		m.report(tgid, w, KindEBPF, exitTime(ktimeNs))
		return
	}
	m.waitPidfd(tgid, w)
}

// waitPidfd starts a goroutine that reports the watch's exit once its
// pidfd is readable, unless one runs already or the watch has ended.
func (m *ebpfMonitor) waitPidfd(pid int32, w *ebpfWatch) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.watched[pid] != w || w.cancel != nil || w.f == nil {
		return // ended meanwhile, or already waited on
	}
	ctx, cancel := context.WithCancel(context.Background())
	w.cancel = cancel
	m.wg.Add(1) // under mu: Close has not cleared watched yet
	go m.confirm(ctx, pid, w)
}

// confirm waits on a watch's pidfd and reports the exit once it is
// readable, at the time it became so. It ends early on Unwatch or Close.
func (m *ebpfMonitor) confirm(ctx context.Context, pid int32, w *ebpfWatch) {
	defer m.wg.Done()
	if err := sys.WaitPidfd(ctx, w.f); err != nil {
		return
	}
	m.report(pid, w, KindPidfd, time.Now())
}

// report sends the exit of pid if w is still its watch, and ends the watch.
func (m *ebpfMonitor) report(pid int32, w *ebpfWatch, source string, at time.Time) {
	m.mu.Lock()
	if m.watched == nil || m.watched[pid] != w {
		m.mu.Unlock()
		return
	}
	delete(m.watched, pid)
	m.mu.Unlock()
	w.end()
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

// end stops the watch's pidfd wait (if any) and closes its pidfd.
func (w *ebpfWatch) end() {
	if w.cancel != nil {
		w.cancel()
	}
	closeFile(w.f)
}

// Watch records pid with a pidfd of the process and then checks, with the
// pidfd, that the process is still alive: an exit traced before the pid
// was recorded would otherwise be missed. Either path reports, never both.
// pid must be the process's pid in the router's namespace (SO_PEERCRED's).
func (m *ebpfMonitor) Watch(pid int32, pidfd *os.File) error {
	if pid <= 0 {
		closeFile(pidfd)
		return fmt.Errorf("watch pid %d: %w: must be positive", pid, ErrInvalidPID)
	}
	since, err := sys.MonotonicNanos()
	if err != nil {
		closeFile(pidfd)
		return fmt.Errorf("watch pid %d: %w", pid, err)
	}
	f, err := pollablePidfd(pid, pidfd)
	if err != nil && !errors.Is(err, sys.ESRCH) {
		return fmt.Errorf("watch pid %d: %w", pid, err)
	}
	// ESRCH: already reaped; f is nil and the check below reports it.
	w := &ebpfWatch{f: f, since: uint64(since)}
	m.mu.Lock()
	if m.watched == nil {
		m.mu.Unlock()
		closeFile(f)
		return fmt.Errorf("watch pid %d: %w", pid, os.ErrClosed)
	}
	if _, dup := m.watched[pid]; dup {
		m.mu.Unlock()
		closeFile(f)
		return nil
	}
	m.watched[pid] = w
	m.wg.Add(1) // under mu: Close cannot be waiting yet
	m.mu.Unlock()
	defer m.wg.Done()
	gone, err := exitedNow(f)
	if err != nil {
		m.Unwatch(pid)
		return fmt.Errorf("watch pid %d: %w", pid, err)
	}
	if gone {
		// Report from another goroutine: the caller may be the one
		// receiving Events.
		m.wg.Add(1)
		go func() { defer m.wg.Done(); m.report(pid, w, "pidfd-check", time.Now()) }()
		return nil
	}
	if m.nested {
		m.waitPidfd(pid, w) // a nested namespace's exit is not traced
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

// exitedNow reports, without blocking, whether the process behind the
// pidfd f has exited (a nil f: it was already reaped).
func exitedNow(f *os.File) (bool, error) {
	if f == nil {
		return true, nil
	}
	rc, err := f.SyscallConn()
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
	w := m.watched[pid]
	delete(m.watched, pid)
	m.mu.Unlock()
	if w != nil {
		w.end()
	}
}

// Close detaches the program, stops the reader and closes Events.
func (m *ebpfMonitor) Close() error {
	var err error
	m.closed.do(func() {
		close(m.done)
		m.mu.Lock()
		ws := m.watched
		m.watched = nil
		m.mu.Unlock()
		for _, w := range ws {
			w.end()
		}
		err = m.t.Close()
		m.wg.Wait()
		close(m.events)
	})
	return err
}
