package ringbuf

import (
	"errors"
	"fmt"
	"os"

	"github.com/parallax-ipc/parallax"
)

// Errors returned by this package. Callers test them with [errors.Is].
var (
	// ErrFull reports a TryPush on a full [BlockProducer] ring.
	ErrFull = errors.New("ring full")
	// ErrInvalidArgument reports a bad capacity, policy or region handed to
	// [Format] or [FormatNotifier], or a nil ref handed to a push.
	ErrInvalidArgument = errors.New("invalid argument")
)

// Pre-allocated errors for the hot paths, so they never allocate.
var (
	errRingClosed     = fmt.Errorf("ring closed: %w", os.ErrClosed)
	errNotifierClosed = fmt.Errorf("notifier closed: %w", os.ErrClosed)
	errNilRef         = fmt.Errorf("push nil chunk ref: %w", ErrInvalidArgument)
	errCorruptIndices = fmt.Errorf("ring holds more entries than its capacity: %w", parallax.ErrCorrupt)
)
