//go:build parallax_countatomics

package ringbuf

import (
	"sync/atomic"

	"github.com/parallax-ipc/parallax/internal/atomiccount"
	"github.com/parallax-ipc/parallax/internal/sys"
)

// shmWord64 and shmWord32 are the types of the words in shared memory. In
// this build (parallax_countatomics) each wraps sync/atomic's type, has the
// same size and layout, and counts every access in internal/atomiccount
// before making it. The default build aliases sync/atomic's types
// (shmword_off.go).
type (
	shmWord64 struct{ v atomic.Uint64 }
	shmWord32 struct{ v atomic.Uint32 }
)

func (w *shmWord64) Load() uint64 { atomiccount.Add(false); return w.v.Load() }

func (w *shmWord64) Store(x uint64) { atomiccount.Add(true); w.v.Store(x) }

func (w *shmWord64) Add(d uint64) uint64 { atomiccount.Add(true); return w.v.Add(d) }

func (w *shmWord64) Swap(x uint64) uint64 { atomiccount.Add(true); return w.v.Swap(x) }

func (w *shmWord64) CompareAndSwap(old, x uint64) bool {
	atomiccount.Add(true)
	return w.v.CompareAndSwap(old, x)
}

func (w *shmWord32) Load() uint32 { atomiccount.Add(false); return w.v.Load() }

func (w *shmWord32) Store(x uint32) { atomiccount.Add(true); w.v.Store(x) }

func (w *shmWord32) Add(d uint32) uint32 { atomiccount.Add(true); return w.v.Add(d) }

func (w *shmWord32) Swap(x uint32) uint32 { atomiccount.Add(true); return w.v.Swap(x) }

func (w *shmWord32) CompareAndSwap(old, x uint32) bool {
	atomiccount.Add(true)
	return w.v.CompareAndSwap(old, x)
}

// storeRelease stores x into w with release ordering only, counted as an
// unlocked access (a plain store on amd64; see shmword_off.go).
func storeRelease(w *shmWord64, x uint64) { atomiccount.Add(false); sys.StoreRelease64(&w.v, x) }
