package procmon

import (
	"errors"
	"fmt"
	"os"
	"strings"
	"time"
)

// Mode selects a [Monitor] implementation.
type Mode string

// Modes accepted by [New] and [ParseMode].
const (
	// ModeAuto uses eBPF when the process may load BPF programs, else pidfd,
	// else no monitor (control-socket EOF only). The empty Mode means auto.
	ModeAuto Mode = "auto"
	// ModeEBPF requires the eBPF monitor.
	ModeEBPF Mode = "ebpf"
	// ModePidfd requires the pidfd monitor.
	ModePidfd Mode = "pidfd"
)

// Kinds returned by [Monitor.Kind].
const (
	KindEBPF  = "ebpf"
	KindPidfd = "pidfd"
	// KindNone is the monitor that reports nothing: the router then relies
	// on control-socket EOF alone.
	KindNone = "none"
)

// ParseMode parses "auto", "ebpf" or "pidfd" (case-insensitive; "" means
// auto). Anything else is an error naming the accepted values.
func ParseMode(s string) (Mode, error) {
	switch m := Mode(strings.ToLower(strings.TrimSpace(s))); m {
	case "", ModeAuto:
		return ModeAuto, nil
	case ModeEBPF, ModePidfd:
		return m, nil
	}
	return "", fmt.Errorf("process monitor mode %q: %w: want auto, ebpf or pidfd", s, ErrInvalidMode)
}

// String returns the mode's name ("auto" for the empty Mode).
func (m Mode) String() string {
	if m == "" {
		return string(ModeAuto)
	}
	return string(m)
}

// Errors returned by this package.
var (
	// ErrInvalidMode reports a Mode that is not auto, ebpf or pidfd.
	ErrInvalidMode = errors.New("invalid process monitor mode")
	// ErrInvalidPID reports a pid that cannot name a process (≤ 0).
	ErrInvalidPID = errors.New("invalid pid")
)

// An Exit reports that a watched process has exited (all its threads).
// The pid is one of the router's pid namespace (the caller's); see the
// package doc for what the eBPF monitor guarantees across namespaces.
type Exit struct {
	// PID is the process id (tgid) that was watched.
	PID int32
	// Source names what noticed the exit: "ebpf", "pidfd" (the pidfd
	// monitor, or the eBPF monitor's pidfd wait in the cases the package
	// doc lists) or "pidfd-check" (the eBPF monitor's liveness check at
	// Watch, for a process that died before it was watched).
	Source string
	// At is when the process exited: for "ebpf", the kernel's timestamp
	// of its exit; the moment the exit was noticed otherwise.
	At time.Time
}

// A Monitor reports the exits of watched processes.
//
// Implementations are safe for concurrent use. Each Watch reports at most
// one [Exit]; after it, the pid is no longer watched. Close stops the
// monitor: it releases its kernel objects and goroutines, closes every pidfd
// it holds and then closes the Events channel. Close is idempotent.
type Monitor interface {
	// Watch starts watching pid. pidfd, when not nil, is a pidfd of the
	// same process (SO_PEERPIDFD); Watch takes ownership of it and closes
	// it when the watch ends (or at once on error). Without one the
	// monitor opens its own when it needs one. Watching a pid that is
	// already watched is a no-op (the extra pidfd is closed). A process
	// that has already exited is reported at once. After Close, Watch
	// returns an error wrapping os.ErrClosed.
	Watch(pid int32, pidfd *os.File) error
	// Unwatch stops watching pid; an exit after it is not reported. It is
	// a no-op for a pid that is not watched.
	Unwatch(pid int32)
	// Events delivers one Exit per watched process that exited. It is
	// closed by Close. The monitor blocks (does not drop) while the
	// receiver lags.
	Events() <-chan Exit
	// Kind is "ebpf", "pidfd" or "none".
	Kind() string
	// Close stops the monitor (see the type's doc).
	Close() error
}

// New returns a monitor for mode. [ModeAuto] (or "") tries eBPF, then
// pidfd, then falls back to a monitor that reports nothing; [FallbackReason]
// on the result says why auto did not get eBPF. [ModeEBPF] or [ModePidfd]
// fail when that monitor is unavailable, with an error wrapping
// parallax.ErrNotSupported and the underlying cause (for eBPF without
// privileges, also os.ErrPermission). Feature probes run once per process.
func New(mode Mode) (Monitor, error) {
	switch mode {
	case ModeEBPF:
		return newEBPF(nil)
	case ModePidfd:
		return newPidfd()
	case "", ModeAuto:
		m, eerr := newEBPF(nil)
		if eerr == nil {
			return m, nil
		}
		p, perr := newPidfd()
		if perr == nil {
			p.reason = eerr.Error()
			return p, nil
		}
		return &none{events: make(chan Exit), reason: errors.Join(eerr, perr).Error()}, nil
	}
	_, err := ParseMode(string(mode))
	return nil, err
}

// FallbackReason returns why a monitor from [New] in auto mode is not the
// eBPF one ("" for eBPF, and for monitors created in an explicit mode).
func FallbackReason(m Monitor) string {
	if r, ok := m.(interface{ fallbackReason() string }); ok {
		return r.fallbackReason()
	}
	return ""
}

// none is the monitor of last resort: it reports nothing.
type none struct {
	events chan Exit
	reason string
	closed closeOnce
}

func (n *none) Watch(pid int32, pidfd *os.File) error {
	if pidfd != nil {
		pidfd.Close()
	}
	if n.closed.done() {
		return fmt.Errorf("watch pid %d: %w", pid, os.ErrClosed)
	}
	return nil
}
func (n *none) Unwatch(int32)          {}
func (n *none) Events() <-chan Exit    { return n.events }
func (n *none) Kind() string           { return KindNone }
func (n *none) fallbackReason() string { return n.reason }
func (n *none) Close() error {
	n.closed.do(func() { close(n.events) })
	return nil
}
