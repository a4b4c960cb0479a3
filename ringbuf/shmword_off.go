//go:build !parallax_countatomics

package ringbuf

import (
	"sync/atomic"

	"github.com/parallax-ipc/parallax/internal/sys"
)

// shmWord64 and shmWord32 are the types of the words in shared memory. In
// the default build they are sync/atomic's types themselves, so every
// access compiles to the plain atomic instruction; a binary built with the
// parallax_countatomics tag counts each access (shmword_on.go,
// internal/atomiccount).
type (
	shmWord64 = atomic.Uint64
	shmWord32 = atomic.Uint32
)

// storeRelease stores x into w with release ordering only (a plain store
// on amd64): for words no Dekker handshake reads, such as a slot that the
// seq-cst tail store after it publishes.
func storeRelease(w *shmWord64, x uint64) { sys.StoreRelease64(w, x) }
