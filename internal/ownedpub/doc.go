// Package ownedpub is the publisher side of the owned memory model of issue
// 12 (docs/design/memory-ownership.md §2, landing step 6): an [Engine] loans
// chunks of the publisher's own data segments, publishes them on every
// connection with that connection's queue policy, takes them back through
// the connections' return rings and keeps history for late joiners. It is
// router-independent: the caller maps the segments the router granted and
// hands the engine a [dataseg.Segment] per data segment and a
// [ringbuf.Conn] per connection.
//
// # Accounting
//
// All allocation state is the engine's [owner.Tracker], in process memory.
// A chunk goes out most-recently-returned first (LIFO). A ref that comes
// back from a subscriber — through the return ring, or taken back from the
// data ring by a discard-oldest push — is accepted only if the Tracker
// delivered it on that connection under that generation; anything else is
// an error for that connection alone ([ConnError]), frees nothing, and the
// engine stops delivering on and draining the connection until the caller
// removes it.
//
// # Draining (design §2.3)
//
// The engine drains return rings only when it needs chunks or room:
//
//   - Loan finds its size class empty: drain every connection, retry once.
//   - A delivery finds its connection at its bound: drain that connection,
//     retry once; still at the bound, the connection's policy applies.
//   - Every [Options.DrainEvery] publishes (default 64), drain every
//     connection, so chunks do not sit in return rings while the free list
//     still has others.
//
// There is no drain per message: a drain reads the return ring's tail and
// slot lines, which the subscriber has just written, so draining on every
// send moves those lines between cores on every message. Draining a batch
// when needed moves them once per batch, and the LIFO free list hands the
// last chunk of the batch out next, while it is still cache-hot.
//
// # Queue policies
//
// [ringbuf.DiscardOldest]: a push into a full data ring takes the oldest
// entry back; its value comes from memory the subscriber can write, so it
// is validated as a return. [ringbuf.BlockProducer]: a push into a full
// ring, or a delivery at the bound after a drain, waits up to
// [Options.BlockTimeout] (the ring's futex wait for space, or the return
// wake for returns) with the engine's mutex released; on timeout Publish
// reports an error wrapping [parallax.ErrTimeout] for that connection and
// the message goes to the others.
//
// # Concurrency (design §2.4)
//
// One process-local mutex guards the Tracker and the connection list. It
// is never held across a blocking wait. Loan, Release, Stats, AddConn,
// CloseConn and RemoveConn may run on any goroutine. Publish calls are
// serialised: a Publish that finds another one waiting on a full
// block-producer connection waits for it (each data ring has one producer).
// RemoveConn waits for a Publish blocked on that connection to give up
// before it returns, so the caller may unmap the segment afterwards. The
// engine adds no shared-memory atomics of its own: every shared-memory
// access is a [ringbuf] call, whose orderings ringbuf documents; the mutex
// is the only other atomic (two uncontended local atomics per Publish and
// per Loan; none with [Options.SingleGoroutine], for a caller that
// serialises every call itself). The publish path allocates nothing, waits included; only
// a timeout allocates its error.
//
// # Closing
//
// The engine also counts what keeps its memory in use, so its caller needs
// no guard of its own around Loan and Publish: [Engine.Close] refuses new
// loans (and turns the publish of an outstanding one into a release), the
// Tracker counts the loans, [Engine.Hold] covers work outside a loan, and
// [Options.OnIdle] runs once when the engine is closed and none of them
// remains. package publisher unmaps its data segments there; its Loan and
// Publish take nothing but the engine's mutex.
package ownedpub
