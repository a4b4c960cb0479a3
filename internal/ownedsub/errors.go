package ownedsub

import (
	"errors"
	"fmt"
	"os"

	"github.com/parallax-ipc/parallax"
)

// Errors returned by the engine. The data-path ones are pre-allocated.
var (
	// ErrEmpty reports a TryTake that found nothing to take.
	ErrEmpty = errors.New("no sample available")
	// ErrHeldLimit reports a TryTake that found data only on connections
	// holding MaxHeld samples each; nothing was popped. Release samples
	// and take again. It wraps [parallax.ErrLimit].
	ErrHeldLimit = fmt.Errorf("every connection with data holds its MaxHeld samples: %w", parallax.ErrLimit)
	// ErrNotHeld reports the release of a sample that is not held: released
	// already, a copy of one released, or the zero Sample. Nothing was
	// pushed. It wraps [parallax.ErrNotHeld].
	ErrNotHeld = fmt.Errorf("sample not held: %w", parallax.ErrNotHeld)
	// ErrPendingSegment is matched by a [*PendingError].
	ErrPendingSegment = errors.New("ref names a segment not granted yet")
	// ErrConnFailed is matched by a [*ConnError].
	ErrConnFailed = errors.New("connection failed")
	// ErrClosed reports a take from a closed engine. It wraps
	// [os.ErrClosed].
	ErrClosed = fmt.Errorf("subscriber engine closed: %w", os.ErrClosed)
	// ErrInvalidArgument reports a bad connection segment, data segment or
	// limit handed to the engine.
	ErrInvalidArgument = fmt.Errorf("invalid argument: %w", parallax.ErrInvalidArgument)
	// ErrConnGone reports a connection that was removed or belongs to
	// another engine.
	ErrConnGone = errors.New("connection removed")
)

// A ConnError reports that a connection failed: its publisher pushed a ref
// that names no chunk of its own segments (a garbage ref, a segment index
// beyond its maximum, a slot out of range, generation 0, a chunk header
// whose length exceeds the chunk), its ring indices are corrupt, or its
// return ring was full. The engine takes from it no more and pushes nothing
// into it; the caller reports it (the router cuts the connection) and then
// calls [Engine.RemoveConn]. It matches [ErrConnFailed] and wraps Err.
type ConnError struct {
	Conn  uint32 // the connection's id
	PubID uint32 // its publisher
	Err   error  // what was wrong
}

func (e *ConnError) Error() string {
	return fmt.Sprintf("connection %d (publisher %d): %v", e.Conn, e.PubID, e.Err)
}

// Unwrap returns Err.
func (e *ConnError) Unwrap() error { return e.Err }

// Is reports whether target is [ErrConnFailed].
func (e *ConnError) Is(target error) bool { return target == ErrConnFailed }

// A PendingError reports a ref naming a segment index of the connection's
// publisher that the caller has not added yet (below the connection's
// maxSegments). The engine keeps the ref and skips the connection; the
// caller asks the router for the segment (GetDataSegment), adds it with
// [Engine.AddSegment] and takes again: the kept ref comes first. If the
// router refuses, the caller calls [Engine.FailConn]. It matches
// [ErrPendingSegment]. The engine reuses one PendingError per connection:
// read it before the next TryTake.
type PendingError struct {
	Conn    uint32 // the connection's id
	PubID   uint32 // its publisher
	Segment uint16 // the segment index to ask for
}

func (e *PendingError) Error() string {
	return fmt.Sprintf("connection %d: ref names data segment %d of publisher %d, not granted yet", e.Conn, e.Segment, e.PubID)
}

// Is reports whether target is [ErrPendingSegment].
func (e *PendingError) Is(target error) bool { return target == ErrPendingSegment }

// errTimeout is the timeout of a wait with no connection to sleep on.
var errTimeout = fmt.Errorf("no connection: %w", parallax.ErrTimeout)

// errWaitTimeout is Wait's own timeout or deadline (not ctx's end).
var errWaitTimeout = fmt.Errorf("wait for samples: %w", parallax.ErrTimeout)

// isTimeout reports whether err is a wait's timeout.
func isTimeout(err error) bool { return errors.Is(err, parallax.ErrTimeout) }
