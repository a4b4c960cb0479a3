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
	// ErrEmpty reports a pop from an empty ring.
	ErrEmpty = errors.New("ring empty")
	// ErrCorruptRing reports ring indices that no sequence of honest pushes
	// and pops can produce (a faulty or hostile peer wrote them): tail more
	// than a capacity ahead of head, head past tail (or moved back more than
	// the producer allows), garbage in the tail word's unused half. The errors that carry it also
	// wrap [parallax.ErrCorrupt] and name what was wrong. The ring is dead:
	// stop using it and drop its connection.
	ErrCorruptRing = errors.New("corrupt ring indices")
)

// Pre-allocated errors for the hot paths, so they never allocate.
var (
	errRingClosed     = fmt.Errorf("ring closed: %w", os.ErrClosed)
	errNotifierClosed = fmt.Errorf("notifier closed: %w", os.ErrClosed)
	errNilRef         = fmt.Errorf("push nil chunk ref: %w", ErrInvalidArgument)
	// errWaitTimeout is a wait's own timeout or deadline (not ctx's):
	// callers that wait in slices meet it often.
	errWaitTimeout = fmt.Errorf("wait for notification: %w", parallax.ErrTimeout)

	// Corrupt indices, each naming what was wrong (see ErrCorruptRing).
	// Positions wrap modulo 2^32, so "tail far ahead" and "head past
	// tail" are the same condition: tail-head > capacity.
	errDistance  = fmt.Errorf("ring tail is not within the capacity ahead of head (tail far ahead, or head past tail): %w: %w", ErrCorruptRing, parallax.ErrCorrupt)
	errTailHigh  = fmt.Errorf("ring tail word has bits set above its 32-bit position: %w: %w", ErrCorruptRing, parallax.ErrCorrupt)
	errHeadChurn = fmt.Errorf("ring head keeps changing without making room: %w: %w", ErrCorruptRing, parallax.ErrCorrupt)
)
