package amutex

import "github.com/parallax-ipc/parallax/internal/sys"

// Modes lists the unlock modes this process can run: the sequentially
// consistent store always, the plain store with membarrier where it works.
func Modes() []bool {
	if sys.ReleaseIsPlain && sys.MembarrierReady() {
		return []bool{false, true}
	}
	return []bool{false}
}

// SetPlainUnlock switches the unlock mode (no Mutex may be in use) and
// returns the previous one.
func SetPlainUnlock(plain bool) bool {
	if plain {
		Enable() // the process must be registered for membarrier
	}
	return plainUnlock.Swap(plain)
}

// Waiters returns how many goroutines are registered to sleep on m.
func (m *Mutex) Waiters() int { return int(m.waiters.Load()) }
