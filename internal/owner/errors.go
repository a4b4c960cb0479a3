package owner

import (
	"errors"
	"fmt"

	"github.com/parallax-ipc/parallax"
)

// Errors returned by the Tracker. The data-path ones are pre-allocated, so a
// refused call allocates nothing.
var (
	// ErrBound reports a delivery on a connection that already has its
	// bound of chunks outstanding. The publisher drains the connection's
	// return ring and retries; see the package doc.
	ErrBound = errors.New("connection at its bound of outstanding chunks")
	// ErrConnClosed reports a delivery on a connection that is closing or
	// gone, or a ConnTrack of another Tracker.
	ErrConnClosed = errors.New("connection not live")
	// ErrNotLoaned reports a chunk index that is not loaned (Published,
	// Unloan, HistoryPush) or neither loaned nor in history (Deliver). It
	// wraps [parallax.ErrNotHeld].
	ErrNotLoaned = fmt.Errorf("chunk not loaned: %w", parallax.ErrNotHeld)
	// ErrDelivered reports a second delivery of a chunk on one connection, a
	// second HistoryPush of one chunk, or an Unloan of a chunk that was
	// already delivered or put in history.
	ErrDelivered = errors.New("chunk already delivered")
	// ErrSegment reports an AddSegment with an index already in use, or a
	// size or count out of range.
	ErrSegment = errors.New("invalid segment")
	// ErrClass reports a class index that names no class.
	ErrClass = errors.New("no such size class")

	errExhausted = fmt.Errorf("loan: no free chunk in this size class: %w", parallax.ErrPoolExhausted)
	errLoanLimit = fmt.Errorf("loan: MaxLoans chunks already loaned: %w", parallax.ErrLimit)
)

// A ReturnError reports a return refused by [Tracker.Return]: a ref that a
// subscriber pushed into its return ring (or left in its data ring for a
// discard-oldest take-back) that does not name a chunk delivered on that
// connection under that generation. Nothing was freed.
//
// It matches [parallax.ErrInvalidRef] in every case, so one errors.Is check
// tells the publisher to report the connection; Reason says more:
// [parallax.ErrInvalidRef] (segment, slot or generation 0 out of range),
// [parallax.ErrNotHeld] (not outstanding on this connection: a double
// return, or a chunk delivered elsewhere or never) or
// [parallax.ErrStaleRef] (outstanding, but under another generation).
type ReturnError struct {
	Conn   uint32            // the connection's id
	Ref    parallax.ChunkRef // the ref as read from shared memory
	Reason error             // one of the root sentinels above
}

func (e *ReturnError) Error() string {
	return fmt.Sprintf("return %v on connection %d: %v", e.Ref, e.Conn, e.Reason)
}

// Unwrap returns [parallax.ErrInvalidRef] and Reason.
func (e *ReturnError) Unwrap() []error { return []error{parallax.ErrInvalidRef, e.Reason} }
