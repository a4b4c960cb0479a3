package procmon

import (
	"context"
	"errors"
	"fmt"
	"os"
	"sync"
	"time"

	"github.com/parallax-ipc/parallax"
	"github.com/parallax-ipc/parallax/internal/sys"
)

// eventBuffer is the capacity of a monitor's Events channel.
const eventBuffer = 64

// pidfdMonitor watches each pid with a goroutine parked in the Go netpoller
// on the process's non-blocking pidfd (which becomes readable when the
// whole thread group has exited, reaped or not).
//
// Lock order: mu is a leaf; no send on events happens under it.
type pidfdMonitor struct {
	events chan Exit
	done   chan struct{} // closed by Close: unblocks pending sends
	reason string        // why auto mode fell back to pidfd

	mu      sync.Mutex
	watches map[int32]*pidWatch // nil after Close

	wg     sync.WaitGroup // watch goroutines
	closed closeOnce
}

type pidWatch struct {
	f      *os.File // nil when the process was already gone at Watch
	cancel context.CancelFunc
}

// pidfdProbe checks once per process that pidfd_open works.
var pidfdProbe = sync.OnceValue(func() error {
	f, err := sys.OpenPidfd(os.Getpid())
	if err != nil {
		return err
	}
	return f.Close()
})

func newPidfd() (*pidfdMonitor, error) {
	if err := pidfdProbe(); err != nil {
		if !errors.Is(err, parallax.ErrNotSupported) {
			err = fmt.Errorf("%w: %w", parallax.ErrNotSupported, err)
		}
		return nil, fmt.Errorf("pidfd process monitor: %w", err)
	}
	return &pidfdMonitor{
		events:  make(chan Exit, eventBuffer),
		done:    make(chan struct{}),
		watches: make(map[int32]*pidWatch),
	}, nil
}

func (m *pidfdMonitor) Kind() string           { return KindPidfd }
func (m *pidfdMonitor) Events() <-chan Exit    { return m.events }
func (m *pidfdMonitor) fallbackReason() string { return m.reason }

func (m *pidfdMonitor) Watch(pid int32, pidfd *os.File) error {
	if pid <= 0 {
		if pidfd != nil {
			pidfd.Close()
		}
		return fmt.Errorf("watch pid %d: %w: must be positive", pid, ErrInvalidPID)
	}
	f, err := pollablePidfd(pid, pidfd)
	if err != nil && !errors.Is(err, sys.ESRCH) {
		return fmt.Errorf("watch pid %d: %w", pid, err)
	}
	// ESRCH: the process is already gone; f is nil and the goroutine
	// reports the exit at once.
	m.mu.Lock()
	if m.watches == nil {
		m.mu.Unlock()
		closeFile(f)
		return fmt.Errorf("watch pid %d: %w", pid, os.ErrClosed)
	}
	if _, ok := m.watches[pid]; ok {
		m.mu.Unlock()
		closeFile(f)
		return nil
	}
	ctx, cancel := context.WithCancel(context.Background())
	w := &pidWatch{f: f, cancel: cancel}
	m.watches[pid] = w
	m.wg.Add(1)
	m.mu.Unlock()
	go m.wait(ctx, pid, w)
	return nil
}

// wait owns w.f: it waits for the exit, reports it, and closes the pidfd.
func (m *pidfdMonitor) wait(ctx context.Context, pid int32, w *pidWatch) {
	defer m.wg.Done()
	defer closeFile(w.f)
	if w.f != nil {
		if err := sys.WaitPidfd(ctx, w.f); err != nil {
			return // Unwatch or Close
		}
	}
	m.report(pid, w)
}

// report sends the exit of pid unless its watch ended meanwhile.
func (m *pidfdMonitor) report(pid int32, w *pidWatch) {
	m.mu.Lock()
	if m.watches == nil || m.watches[pid] != w {
		m.mu.Unlock()
		return
	}
	delete(m.watches, pid)
	m.mu.Unlock()
	w.cancel()
	select {
	case m.events <- Exit{PID: pid, Source: KindPidfd, At: time.Now()}:
	case <-m.done:
	}
}

func (m *pidfdMonitor) Unwatch(pid int32) {
	m.mu.Lock()
	w := m.watches[pid]
	delete(m.watches, pid)
	m.mu.Unlock()
	if w != nil {
		w.cancel()
	}
}

// Close stops every watch, waits for the watch goroutines (which close
// their pidfds) and closes Events.
func (m *pidfdMonitor) Close() error {
	m.closed.do(func() {
		close(m.done)
		m.mu.Lock()
		ws := m.watches
		m.watches = nil
		m.mu.Unlock()
		for _, w := range ws {
			w.cancel()
		}
		m.wg.Wait()
		close(m.events)
	})
	return nil
}

func closeFile(f *os.File) {
	if f != nil {
		f.Close()
	}
}
