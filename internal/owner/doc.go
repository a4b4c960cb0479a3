// Package owner keeps a publisher's chunk accounting in process memory
// (issue 12, docs/design/memory-ownership.md §2): only the publisher that
// owns a data segment decides which of its chunks are in use, and nothing
// about that lives in shared memory. Pure Go: no unsafe, no atomics, no
// shared memory.
//
// # Units
//
// A [Tracker] counts, per chunk, the units that keep it in use (its
// fan-out): one while it is loaned (from [Tracker.Loan] to
// [Tracker.Published] or [Tracker.Unloan]), one while it is in history
// ([Tracker.HistoryPush] until evicted) and one per connection it was
// delivered on and not yet returned ([Tracker.Deliver] until
// [Tracker.Return] or [Tracker.ReclaimConn]). A chunk whose last unit goes
// is pushed onto its size class's free stack, and [Tracker.Loan] pops the
// top: the most recently freed chunk goes out next, while its lines are
// still cache-hot. Its generation is bumped at that loan and is never 0.
//
// Invariants after every call (the model test checks them all):
//
//   - Units = Loans + History + Σ_c Outstanding(c), and each chunk's fan-out
//     is its loan unit + its history unit + the number of connections whose
//     bit is set for it.
//   - InUse = chunks with fan-out > 0 = Chunks − Free. A chunk is on a free
//     stack iff its fan-out is 0: never while a connection bit, a loan or a
//     history entry holds it.
//   - Outstanding(c) = the number of set bits of c ≤ Bound(c).
//
// # Validation
//
// Everything a subscriber hands back comes from memory it can write.
// [Tracker.Return] accepts a ref only if its segment and slot exist, its
// generation is not 0, the bit of that chunk is set on *that* connection and
// the generation is the chunk's current one. Anything else (garbage, a
// double return, a chunk delivered only on another connection, an old
// generation) is a [*ReturnError] that frees nothing.
//
// # Bound and draining
//
// Deliver refuses with [ErrBound] when a connection has Bound chunks
// outstanding: the publisher then drains that connection's return ring and
// retries once; still at the bound means the data ring is full, and the
// connection's queue policy applies. When Loan finds the class empty
// (parallax.ErrPoolExhausted) the publisher drains every connection and
// retries once. The router sizes segments so that, with honest subscribers,
// MaxLoans + History + Σ Bound chunks always exist.
//
// # Concurrency
//
// A Tracker and its [ConnTrack]s are not safe for concurrent use; the
// publisher guards them with one mutex (design §2.4). The data-path calls
// (Loan, Deliver, Published, Unloan, HistoryPush, Return) allocate nothing
// and make no syscall; AddSegment and AddConn allocate and belong on the
// control path.
package owner
