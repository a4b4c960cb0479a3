package discovery

import (
	"fmt"
	"os"
	"sync"
	"time"

	"github.com/parallax-ipc/parallax"
	"github.com/parallax-ipc/parallax/internal/sys"
	"github.com/parallax-ipc/parallax/internal/wire"
)

// The outgoing queue of a ServerConn (see [ServerConn.StartWriter]).
//
// A router must never block on one client: a peer that stops reading its
// socket fills the kernel's socket buffer, and a write on the router's own
// goroutine would then wait for it. Once a writer is started, the send
// helpers of a ServerConn (Reply, ReplyError, Push) only encode the message
// and append it to a bounded queue; one writer goroutine per connection does
// the blocking writes, in queue order. A queue that overflows, or a write
// that makes no progress within the write timeout, cuts the connection: the
// socket is closed (so the reader sees the end of the connection like any
// departure), what is still queued is dropped and OnStall is called once.
//
// Fds: a queued message owns duplicates of the files it was given (the
// caller keeps its own), closed once written, dropped or when the
// connection closes. Whoever holds a message closes its files: the queue
// for what waits in pending, the writer for the batch it took.

// Defaults of [QueueOptions].
const (
	// DefaultQueueMessages bounds the messages waiting for one peer.
	DefaultQueueMessages = 1024
	// DefaultQueueBytes bounds the encoded bytes waiting for one peer.
	DefaultQueueBytes = 4 << 20
	// DefaultWriteTimeout bounds the write of one message.
	DefaultWriteTimeout = 2 * time.Second
)

// Errors of a connection cut because its peer did not read; both wrap
// parallax.ErrLimit.
var (
	// ErrQueueFull reports that the outgoing queue reached its bound.
	ErrQueueFull = fmt.Errorf("outgoing queue full (the peer does not read its socket): %w", parallax.ErrLimit)
	// ErrWriteStalled reports a write that made no progress within the
	// write timeout.
	ErrWriteStalled = fmt.Errorf("write made no progress within the write timeout (the peer does not read its socket): %w", parallax.ErrLimit)
)

// QueueOptions bound a ServerConn's outgoing queue. The zero value uses the
// defaults.
type QueueOptions struct {
	// MaxMessages and MaxBytes bound what may wait to be written (encoded
	// bytes, including the message being written); 0 means
	// DefaultQueueMessages and DefaultQueueBytes.
	MaxMessages int
	MaxBytes    int
	// WriteTimeout bounds the write of one message; 0 means
	// DefaultWriteTimeout. After CloseWhenFlushed it bounds the whole
	// flush.
	WriteTimeout time.Duration
	// OnStall, when set, is called once if the connection is cut because
	// the peer does not read, with an error wrapping ErrQueueFull or
	// ErrWriteStalled. It runs on the goroutine that noticed (a sender or
	// the writer) and must not block.
	OnStall func(error)
}

type outMsg struct {
	b     []byte
	files []*os.File // owned duplicates
}

// outQueue is a ServerConn's outgoing queue and the state of its writer.
// pending, spare, n, bytes, closing, closeBy and closed are guarded by mu.
type outQueue struct {
	conn *Conn
	opts QueueOptions

	mu      sync.Mutex
	pending []outMsg
	spare   []outMsg // the writer's last batch, reused
	n       int      // queued messages, the writer's current batch included
	bytes   int
	closing bool      // CloseWhenFlushed: accept nothing more, close once written
	closeBy time.Time // deadline of the flush after CloseWhenFlushed
	closed  bool      // the socket is closed (or about to be): nothing more is written

	wake chan struct{} // capacity 1: something to do
	done chan struct{} // closed when the writer has exited
}

func newOutQueue(c *Conn, opts QueueOptions) *outQueue {
	if opts.MaxMessages <= 0 {
		opts.MaxMessages = DefaultQueueMessages
	}
	if opts.MaxBytes <= 0 {
		opts.MaxBytes = DefaultQueueBytes
	}
	if opts.WriteTimeout <= 0 {
		opts.WriteTimeout = DefaultWriteTimeout
	}
	return &outQueue{conn: c, opts: opts, wake: make(chan struct{}, 1), done: make(chan struct{})}
}

func (q *outQueue) signal() {
	select {
	case q.wake <- struct{}{}:
	default:
	}
}

// put queues b with duplicates of files. It never blocks on the peer.
func (q *outQueue) put(t wire.Type, b []byte, files []*os.File) error {
	var dups []*os.File
	if len(files) > 0 {
		dups = make([]*os.File, 0, len(files))
		for _, f := range files {
			d, err := sys.DupFile(f)
			if err != nil {
				closeFiles(dups)
				return fmt.Errorf("queue %s: %w", t, err)
			}
			dups = append(dups, d)
		}
	}
	q.mu.Lock()
	if q.closed || q.closing {
		q.mu.Unlock()
		closeFiles(dups)
		return fmt.Errorf("queue %s: %w", t, os.ErrClosed)
	}
	if q.n+1 > q.opts.MaxMessages || q.bytes+len(b) > q.opts.MaxBytes {
		err := fmt.Errorf("queue %s: %d messages (%d bytes) wait already: %w", t, q.n, q.bytes, ErrQueueFull)
		q.cutLocked()
		q.mu.Unlock()
		closeFiles(dups)
		q.stalled(err)
		return err
	}
	q.pending = append(q.pending, outMsg{b: b, files: dups})
	q.n++
	q.bytes += len(b)
	q.mu.Unlock()
	q.signal()
	return nil
}

// cutLocked closes the socket and drops what waits. The writer drops the
// rest of its batch when its next write fails.
func (q *outQueue) cutLocked() {
	if q.closed {
		return
	}
	q.closed = true
	for i := range q.pending {
		closeFiles(q.pending[i].files)
		q.pending[i] = outMsg{}
	}
	q.pending = q.pending[:0]
	_ = q.conn.Close() // a blocked write (and read) returns
	q.signal()
}

func (q *outQueue) stalled(err error) {
	if q.opts.OnStall != nil {
		q.opts.OnStall(err)
	}
}

// closeWhenFlushed stops accepting messages; the writer writes what waits
// (within one WriteTimeout in all) and closes the socket.
func (q *outQueue) closeWhenFlushed() {
	q.mu.Lock()
	if !q.closing && !q.closed {
		q.closing = true
		q.closeBy = time.Now().Add(q.opts.WriteTimeout)
	}
	q.mu.Unlock()
	q.signal()
}

// close cuts the connection at once and waits for the writer to exit.
func (q *outQueue) close() {
	q.mu.Lock()
	q.cutLocked()
	q.mu.Unlock()
	<-q.done
}

// run is the writer goroutine. It exits once the socket is closed, having
// closed the files of every message it took.
func (q *outQueue) run() {
	defer close(q.done)
	uc := q.conn.UnixConn()
	for {
		q.mu.Lock()
		for len(q.pending) == 0 && !q.closed && !q.closing {
			q.mu.Unlock()
			<-q.wake
			q.mu.Lock()
		}
		if q.closed || len(q.pending) == 0 { // cut, or closing with nothing left
			q.cutLocked()
			q.mu.Unlock()
			return
		}
		batch := q.pending
		q.pending = q.spare[:0]
		q.spare = nil
		closing, closeBy := q.closing, q.closeBy
		q.mu.Unlock()

		for i := range batch {
			m := &batch[i]
			deadline := time.Now().Add(q.opts.WriteTimeout)
			if closing {
				deadline = closeBy // the flush as a whole is bounded
			}
			_ = uc.SetWriteDeadline(deadline)
			err := sys.SendMsg(uc, m.b, m.files)
			closeFiles(m.files)
			q.mu.Lock()
			q.n--
			q.bytes -= len(m.b)
			*m = outMsg{}
			if err != nil {
				// A timeout is a peer that does not read; anything else
				// (closed by us, peer gone) is an ordinary end.
				stalled := os.IsTimeout(err) && !q.closed && !closing
				q.cutLocked()
				q.mu.Unlock()
				for j := i + 1; j < len(batch); j++ {
					closeFiles(batch[j].files)
					batch[j] = outMsg{}
				}
				if stalled {
					q.stalled(fmt.Errorf("write %d queued messages: %w (%w)", len(batch)-i, ErrWriteStalled, err))
				}
				return
			}
			closing, closeBy = q.closing, q.closeBy
			q.mu.Unlock()
		}
		q.mu.Lock()
		q.spare = batch[:0]
		q.mu.Unlock()
	}
}
