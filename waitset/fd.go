package waitset

import (
	"errors"
	"fmt"
	"os"
	"sync"
	"sync/atomic"

	"github.com/parallax-ipc/parallax/internal/sys"
	"github.com/parallax-ipc/parallax/ringbuf"
)

// fdSource is one watched descriptor.
type fdSource struct {
	fd    int
	key   int
	ready atomic.Bool // set by the helper, cleared when reported
}

// fdWatch is the helper goroutine that turns fd readability into a wake
// of the set's local futex word. It polls only while armed: Wait arms it
// when it is about to sleep and no fd is known readable; the helper
// blocks in poll(2) over the fds and a kick pipe, marks the readable fds,
// disarms and Notifies the local word (a system call only if the set
// sleeps). That is one extra hop per fd wake: the kernel wakes the
// helper, the helper wakes the waiter.
type fdWatch struct {
	local *ringbuf.Notifier
	armed atomic.Bool
	arm   chan struct{}
	kr    *os.File // kick pipe: a byte restarts the poll (fds changed), EOF ends the helper
	kw    *os.File
	krfd  int
	quit  chan struct{} // closed by close: an idle helper ends
	exit  chan struct{}
	err   atomic.Pointer[error] // poll failed: reported by Wait

	mu  sync.Mutex
	fds []*fdSource
}

func newFdWatch(local *ringbuf.Notifier) (*fdWatch, error) {
	kr, kw, err := os.Pipe()
	if err != nil {
		return nil, fmt.Errorf("create the wait set's fd helper pipe: %w", err)
	}
	w := &fdWatch{local: local, arm: make(chan struct{}, 1), kr: kr, kw: kw, quit: make(chan struct{}), exit: make(chan struct{})}
	rc, err := kr.SyscallConn()
	if err == nil {
		err = rc.Control(func(fd uintptr) { w.krfd = int(fd) })
	}
	if err != nil {
		_, _ = kr.Close(), kw.Close()
		return nil, fmt.Errorf("create the wait set's fd helper pipe: %w", err)
	}
	go w.run()
	return w, nil
}

// add watches fd; a helper blocked in poll restarts with it.
func (w *fdWatch) add(s *fdSource) {
	w.mu.Lock()
	w.fds = append(w.fds, s)
	w.mu.Unlock()
	_, _ = w.kw.Write([]byte{0})
}

// maybeArm starts a poll round unless one runs.
func (w *fdWatch) maybeArm() {
	if w.armed.CompareAndSwap(false, true) {
		w.arm <- struct{}{}
	}
}

func (w *fdWatch) run() {
	defer close(w.exit)
	var pfds []sys.PollFd
	var srcs []*fdSource
	buf := make([]byte, 64)
	for {
		select {
		case <-w.arm:
		case <-w.quit:
			return
		}
		for {
			w.mu.Lock()
			srcs = append(srcs[:0], w.fds...)
			w.mu.Unlock()
			pfds = append(pfds[:0], sys.PollFd{Fd: int32(w.krfd), Events: sys.PollIn})
			for _, s := range srcs {
				pfds = append(pfds, sys.PollFd{Fd: int32(s.fd), Events: sys.PollIn})
			}
			if _, err := sys.Poll(pfds, -1); err != nil {
				if errors.Is(err, sys.EINTR) {
					continue
				}
				err = fmt.Errorf("poll the wait set's fds: %w", err)
				w.err.Store(&err)
				w.done()
				break
			}
			if pfds[0].Revents != 0 {
				if n, _ := w.kr.Read(buf); n == 0 {
					return // kick pipe closed: the set closed
				}
			}
			fired := false
			for i, s := range srcs {
				if pfds[i+1].Revents != 0 {
					s.ready.Store(true)
					fired = true
				}
			}
			if fired {
				w.done()
				break
			}
		}
	}
}

// done ends a poll round: disarm, then wake the waiter (Dekker with its
// sleeping flag: the ready flags are stored before the Notify).
func (w *fdWatch) done() {
	w.armed.Store(false)
	_ = w.local.Notify()
}

// close ends the helper and waits for it. A helper in its poll round ends
// on EOF of the kick pipe, an idle one on quit, and one that is ending a
// round (an fd fired) on quit when it looks for the next. (close used to
// close the arm channel only when no round was armed: a round that ended
// after that look left the helper waiting for another round, and close
// waiting for the helper, for ever.)
func (w *fdWatch) close() {
	close(w.quit)
	_ = w.kw.Close()
	<-w.exit
	_ = w.kr.Close()
}

// AddFd adds a descriptor: key is reported while fd is readable (or hung
// up, or in error), level-triggered: a Wait after one that reported it
// reports it again if it is still readable. The caller keeps fd open
// while it is in the set (there is no removal: close the set first).
func (ws *WaitSet) AddFd(fd int, key int) error {
	if ws.closed.Load() {
		return ErrClosed
	}
	if fd < 0 {
		return fmt.Errorf("add fd %d: %w", fd, ErrInvalidSource)
	}
	if ws.fdw == nil {
		w, err := newFdWatch(ws.local)
		if err != nil {
			return err
		}
		ws.fdw = w
	}
	s := &fdSource{fd: fd, key: key}
	ws.fds = append(ws.fds, s)
	ws.fdw.add(s)
	return nil
}
