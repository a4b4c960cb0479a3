package event

import (
	"errors"
	"fmt"

	"github.com/parallax-ipc/parallax"
)

var (
	// ErrInvalidID is returned for the one id that cannot be signalled
	// (math.MaxUint64: ring entries are id+1, and 0 names nothing).
	ErrInvalidID = fmt.Errorf("event id %d is reserved: %w", uint64(1<<64-1), parallax.ErrInvalidArgument)
	// ErrClosed is returned by a closed Notifier or Listener.
	ErrClosed = errors.New("event: closed")
	// ErrBusy is returned when a second goroutine waits on a Listener.
	ErrBusy = errors.New("event: listener already waited on by another goroutine")
)
