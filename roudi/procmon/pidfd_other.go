//go:build !linux

package procmon

import (
	"os"

	"github.com/parallax-ipc/parallax/internal/sys"
)

// pollablePidfd opens a pidfd for pid (which fails off Linux with an error
// wrapping parallax.ErrNotSupported).
func pollablePidfd(pid int32, pidfd *os.File) (*os.File, error) {
	if pidfd != nil {
		pidfd.Close()
	}
	return sys.OpenPidfd(int(pid))
}
