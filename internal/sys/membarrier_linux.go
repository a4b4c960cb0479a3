//go:build linux

package sys

import (
	"fmt"
	"sync"

	"golang.org/x/sys/unix"
)

// membarrier(2) commands (linux/membarrier.h).
const (
	membarrierQuery                    = 0
	membarrierPrivateExpedited         = 1 << 3
	membarrierRegisterPrivateExpedited = 1 << 4
)

var membarrierOnce = sync.OnceValue(func() bool {
	r, _, e := unix.Syscall(unix.SYS_MEMBARRIER, membarrierQuery, 0, 0)
	if e != 0 || r&membarrierPrivateExpedited == 0 {
		return false
	}
	_, _, e = unix.Syscall(unix.SYS_MEMBARRIER, membarrierRegisterPrivateExpedited, 0, 0)
	return e == 0
})

// MembarrierReady reports whether [Membarrier] works in this process,
// registering the process for it on the first call (membarrier(2)'s
// MEMBARRIER_CMD_REGISTER_PRIVATE_EXPEDITED; Linux 4.14 and later).
func MembarrierReady() bool { return membarrierOnce() }

// Membarrier makes every thread of this process that is running now
// execute a full memory barrier before it returns (membarrier(2)'s
// MEMBARRIER_CMD_PRIVATE_EXPEDITED; threads not running passed one when
// they were switched out). It is the slow half of an asymmetric Dekker
// handshake: the fast side stores and then loads with only a compiler
// barrier between; the slow side stores, calls Membarrier and then loads,
// and one of the two loads sees the other side's store. It costs a system
// call and an inter-processor interrupt per busy CPU (~2 us here); call it
// only after [MembarrierReady] reported true. An error means no barrier
// was made.
func Membarrier() error {
	if _, _, e := unix.Syscall(unix.SYS_MEMBARRIER, membarrierPrivateExpedited, 0, 0); e != 0 {
		return fmt.Errorf("membarrier: %w", errnoErr(e))
	}
	return nil
}
