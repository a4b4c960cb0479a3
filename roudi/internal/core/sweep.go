package core

// Sweeping for leaked chunks.
//
// A process killed inside a bookkeeping window can leave a chunk counted
// as held with nobody to release it (see mempool.HoldTable). The server
// recovers such chunks by sweeping the pools, which frees every chunk still
// held: that is only right when nobody can hold one, and the core, which
// knows who is attached, decides when that is.

// A SweepVerdict says whether the server may sweep the pools now.
type SweepVerdict uint8

const (
	// SweepNo: a client is attached, connecting, or due to resume after a
	// router restart. The next departure (or the end of the resume grace
	// period) asks again.
	SweepNo SweepVerdict = iota
	// SweepLater: nobody is attached but regions still wait for their
	// release or drain; ask again on the next tick.
	SweepLater
	// SweepNow: the domain is idle, so any chunk still held is leaked.
	SweepNow
)

// String returns "no", "later" or "now".
func (v SweepVerdict) String() string {
	switch v {
	case SweepNo:
		return "no"
	case SweepLater:
		return "later"
	case SweepNow:
		return "now"
	}
	return "unknown"
}

// Sweep decides whether the pools may be swept for leaked chunks now.
//
// A client whose id an adopted management segment reserved (it ran under
// the previous router and has not resumed yet, and its grace period has
// not ended) counts as attached: it still holds chunks and has refs queued
// in rings this router does not know yet. So does a connection without a
// handshake yet, which may be such a client coming back.
//
// The owned model never sweeps: it has no router-wide pools, and a chunk
// is in use exactly when its owning publisher's private state says so.
func (r *Router) Sweep() SweepVerdict {
	switch {
	case r.owned():
		return SweepNo
	case len(r.clients) != 0 || len(r.reserved) != 0 || len(r.pending) != 0:
		return SweepNo
	case r.arena.usedBytes != 0 || len(r.retiring) != 0 || len(r.pendingLinks) != 0:
		return SweepLater
	}
	return SweepNow
}
