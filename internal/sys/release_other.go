//go:build !amd64 || race

package sys

import "sync/atomic"

// StoreRelease64 stores v into *p with at least release ordering (here a
// sequentially consistent atomic store: the plain-store form is for amd64
// builds without the race detector; see release_unsafe.go).
func StoreRelease64(p *atomic.Uint64, v uint64) { p.Store(v) }

// StoreRelease32 is [StoreRelease64] for a 32-bit word.
func StoreRelease32(p *atomic.Uint32, v uint32) { p.Store(v) }

// ReleaseIsPlain reports whether [StoreRelease64] and [StoreRelease32] are
// plain stores: not in this build, where they are sequentially consistent.
const ReleaseIsPlain = false
