package clientrt

import "sync/atomic"

// Shares counts what an endpoint has handed out that still needs the
// process runtime (its segment mappings): a publisher's loans, a
// subscriber's taken samples, plus one while the endpoint's Close works.
// The endpoint lets its share of the runtime go when the count drops to 0
// after Close; from then on the count holds a dead mark and Take fails, so
// a stale Chunk or Sample used afterwards gets an error instead of touching
// unmapped memory. The zero value counts nothing. Safe for concurrent use.
type Shares struct{ v atomic.Int64 }

// sharesDead marks the count once the runtime has been let go.
const sharesDead = 1 << 62

// Take adds a share, or reports false when the runtime is gone.
func (s *Shares) Take() bool {
	for {
		v := s.v.Load()
		if v&sharesDead != 0 {
			return false
		}
		if s.v.CompareAndSwap(v, v+1) {
			return true
		}
	}
}

// Drop ends a share. It reports true, to exactly one caller, when this was
// the last share after closed was set: that caller lets the runtime go.
func (s *Shares) Drop(closed *atomic.Bool) bool {
	return s.v.Add(-1) == 0 && closed.Load() && s.v.CompareAndSwap(0, sharesDead)
}

// Count returns the shares held now (without the dead mark): a snapshot
// for statistics.
func (s *Shares) Count() int64 { return s.v.Load() &^ sharesDead }
