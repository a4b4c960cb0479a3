//go:build amd64 && !race

package sys

import (
	"sync/atomic"
	"unsafe"
)

// StoreRelease64 stores v into *p with release ordering only: every load
// and store before it in program order is visible to a thread that
// loads v (with an atomic load) no later than v. It is not sequentially
// consistent: a later load may pass it (x86's store buffer), so it must not
// be the store half of a Dekker handshake. A plain store does this on
// amd64 (TSO), without the locked XCHG that atomic.Uint64.Store costs
// (~6.5 ns here); the Go compiler keeps a plain store after the loads and
// stores before it. Race builds use the atomic store: the race detector
// does not see through a plain one.
func StoreRelease64(p *atomic.Uint64, v uint64) {
	*(*uint64)(unsafe.Pointer(p)) = v
}

// StoreRelease32 is [StoreRelease64] for a 32-bit word.
func StoreRelease32(p *atomic.Uint32, v uint32) {
	*(*uint32)(unsafe.Pointer(p)) = v
}

// ReleaseIsPlain reports whether [StoreRelease64] and [StoreRelease32] are
// plain stores (amd64 without the race detector), which a later load of
// the same thread may pass.
const ReleaseIsPlain = true
