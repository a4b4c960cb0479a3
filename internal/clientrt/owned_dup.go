package clientrt

import (
	"errors"
	"fmt"
	"os"

	"github.com/parallax-ipc/parallax"
)

// errAlreadyMapped is addDataSegment's answer to a second read-only grant
// of a segment it has mapped from the same file: the reply to a
// GetDataSegment and the router's push of that segment can cross, and
// whichever comes second is redundant (its fd is closed).
var errAlreadyMapped = errors.New("data segment already mapped from the same file")

// errNoPublisher is addDataSegment's answer to a publisher's first
// read-write segment that comes with no Create in flight: its publisher
// failed to register or closed.
var errNoPublisher = fmt.Errorf("no publisher of this process awaits it: %w", parallax.ErrProtocol)

// sameFile reports whether a and b are the same open file (device and
// inode): the read-only twin the router grants is one inode, whichever
// message carried it.
func sameFile(a, b *os.File) bool {
	if a == nil || b == nil {
		return false
	}
	sa, errA := a.Stat()
	sb, errB := b.Stat()
	if errA != nil || errB != nil {
		return false
	}
	return os.SameFile(sa, sb)
}
