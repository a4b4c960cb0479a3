package ownedpub

import (
	"errors"
	"fmt"

	"github.com/parallax-ipc/parallax"
)

// Errors returned by the engine. The data-path ones are pre-allocated.
var (
	// ErrNotLoaned reports a Publish or Release of a [Loan] that is not
	// (or no longer) loaned: published or released already, or the zero
	// Loan. It wraps [parallax.ErrNotHeld].
	ErrNotLoaned = fmt.Errorf("loan not outstanding: %w", parallax.ErrNotHeld)
	// ErrTooLarge reports a Loan larger than every size class.
	ErrTooLarge = errors.New("loan larger than every chunk size")
	// ErrInvalidArgument reports a bad segment, connection, bound, policy
	// or length handed to the engine.
	ErrInvalidArgument = errors.New("invalid argument")
	// ErrConnGone reports a connection that was removed or belongs to
	// another engine.
	ErrConnGone = errors.New("connection removed")
)

// A ConnError reports that a connection failed: its subscriber returned a
// ref the publisher never delivered to it (or left one in its data ring for
// a discard-oldest take-back), or its ring indices are corrupt. The engine
// stops delivering on and draining it; the caller reports it (the router
// cuts it) and then calls [Engine.RemoveConn], which reclaims every chunk
// delivered on it. Nothing was freed early.
type ConnError struct {
	Conn uint32 // the connection's id
	Err  error  // what was wrong, for example an [owner.ReturnError]
}

func (e *ConnError) Error() string { return fmt.Sprintf("connection %d: %v", e.Conn, e.Err) }

// Unwrap returns Err.
func (e *ConnError) Unwrap() error { return e.Err }
