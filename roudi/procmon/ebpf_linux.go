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
// With ns nil (the router runs in the initial pid namespace) the record
// carries the init-namespace pid_tgid, which is what SO_PEERCRED reports
// there. Otherwise it carries the pid_tgid in ns
// (bpf_get_ns_current_pid_tgid, Linux 5.7+), and the exits of processes
// whose pid namespace is not exactly ns are not recorded: their numbers
// would name other processes in the router's namespace.
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

func newExitTracer() (_ *exitTracer, err error) {
	ns, err := ownPidNS()
	if err != nil {
		return nil, err
	}
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
// A traced exit is only a hint: the tracer names processes by their pid in
// its namespace, which is not necessarily the router's, so the number may
// belong to an unrelated process. Each watch holds the client's pidfd, and
// an exit is reported only once that pidfd says the process has exited.
//
// Lock order: mu is a leaf; no send on events happens under it.
type ebpfMonitor struct {
	t      *exitTracer
	events chan Exit
	done   chan struct{}
	// trace, when set (tests), sees every record's tgid before filtering.
	trace func(tgid int32, ktimeNs uint64)

	mu      sync.Mutex
	watched map[int32]*ebpfWatch // nil after Close

	wg     sync.WaitGroup // the reader, confirmations and late reports
	closed closeOnce
}

// ebpfWatch is one watched process: its non-blocking pidfd, and the
// cancel of the goroutine waiting on it once a traced exit could not be
// confirmed at once (nil until then).
type ebpfWatch struct {
	f      *os.File // nil when the process was already reaped at Watch
	cancel context.CancelFunc
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
		if m.trace != nil {
			m.trace(tgid, binary.NativeEndian.Uint64(rec.RawSample[8:]))
		}
		m.traced(tgid, binary.NativeEndian.Uint64(rec.RawSample[8:]))
	}
}

// confirmWait bounds how long the ring reader waits for the pidfd of a
// process whose exit it traced to become readable. The tracepoint fires
// before the process has released its memory and files and become a zombie
// (on 6.18 the pidfd is usually not readable yet when the record is read);
// that takes microseconds to a few milliseconds. Waiting here, on the
// reader's thread, keeps the report as fast as the trace; only a record
// naming a live watched process (another namespace's number) waits it out.
const confirmWait = 5 * time.Millisecond

// traced handles a traced exit of tgid: when tgid is watched and its pidfd
// confirms the exit (within confirmWait), it is reported. Otherwise the
// record was another process's with the same number, or this process is
// slow to finish exiting: a goroutine then waits on the pidfd in the
// netpoller and reports when it becomes readable (at once in the second
// case; when the watched process really dies in the first).
func (m *ebpfMonitor) traced(tgid int32, ktimeNs uint64) {
	m.mu.Lock()
	w, ok := m.watched[tgid]
	m.mu.Unlock()
	if !ok {
		return
	}
	if gone, err := exitedWithin(w.f, confirmWait); err == nil && gone {
		m.report(tgid, w, KindEBPF, exitTime(ktimeNs))
		return
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.watched[tgid] != w || w.cancel != nil || w.f == nil {
		return // ended meanwhile, or already waited on
	}
	ctx, cancel := context.WithCancel(context.Background())
	w.cancel = cancel
	m.wg.Add(1) // under mu: Close has not cleared watched yet
	go m.confirm(ctx, tgid, w)
}

// confirm waits on a watch's pidfd and reports the exit once it is
// readable, at the time it became so: the record may have been another
// process's, so its timestamp is not this one's exit. It ends early on
// Unwatch or Close.
func (m *ebpfMonitor) confirm(ctx context.Context, pid int32, w *ebpfWatch) {
	defer m.wg.Done()
	if err := sys.WaitPidfd(ctx, w.f); err != nil {
		return
	}
	m.report(pid, w, KindEBPF, time.Now())
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

// end stops the watch's confirmation (if any) and closes its pidfd.
func (w *ebpfWatch) end() {
	if w.cancel != nil {
		w.cancel()
	}
	closeFile(w.f)
}

// Watch records pid with a pidfd of the process and then checks, with the
// pidfd, that the process is still alive: an exit traced before the pid
// was recorded would otherwise be missed. Either path reports, never both.
func (m *ebpfMonitor) Watch(pid int32, pidfd *os.File) error {
	if pid <= 0 {
		closeFile(pidfd)
		return fmt.Errorf("watch pid %d: %w: must be positive", pid, ErrInvalidPID)
	}
	f, err := pollablePidfd(pid, pidfd)
	if err != nil && !errors.Is(err, sys.ESRCH) {
		return fmt.Errorf("watch pid %d: %w", pid, err)
	}
	// ESRCH: already reaped; f is nil and the check below reports it.
	w := &ebpfWatch{f: f}
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
func exitedNow(f *os.File) (bool, error) { return exitedWithin(f, 0) }

// exitedWithin reports whether the process behind the pidfd f has exited
// or exits within d (a nil f: it was already reaped). It blocks the thread.
func exitedWithin(f *os.File, d time.Duration) (bool, error) {
	if f == nil {
		return true, nil
	}
	rc, err := f.SyscallConn()
	if err != nil {
		return false, fmt.Errorf("check pidfd: %w", err)
	}
	var gone bool
	var perr error
	if err := rc.Control(func(fd uintptr) { gone, perr = sys.PidfdExitedWithin(int(fd), d) }); err != nil {
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
