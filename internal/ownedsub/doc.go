// Package ownedsub is the subscriber side of the owned memory model of issue
// 12 (docs/design/memory-ownership.md §1.5, §2.8, §3.4, §4.1, landing step
// 7): an [Engine] takes refs from its connections' data rings, resolves
// each against the segments of that connection's publisher only, hands out
// [Sample]s (a read-only view plus a private copy of the chunk header), keeps
// a bounded table of held samples per connection and gives each release
// back as one push into that connection's return ring. It is
// router-independent: the caller maps what the router granted and hands the
// engine a [ringbuf.Conn] per connection and a read-only [dataseg.Segment]
// per data segment of that connection's publisher.
//
// # Validation (design §1.5)
//
// Everything the engine reads from a connection comes from memory the
// publisher can write. A popped ref is accepted only if its segment index
// names a segment the caller added to that connection, its slot is below
// that segment's cached count, its generation is not 0 and the length in
// its chunk header (read once, into the Sample's [dataseg.Meta]) fits the
// chunk. An index the publisher may use (below the connection's
// maxSegments) but that the caller has not added yet is pending, not an
// error: [Engine.TryTake] returns a [*PendingError] (matching
// [ErrPendingSegment]) once, keeps the ref, skips the connection until
// [Engine.AddSegment] adds that index, and then delivers the kept ref
// before anything else from that connection. Any other bad ref, and
// corrupt ring indices ([ringbuf.ErrCorruptRing]), fail the connection: a
// [*ConnError] (matching [ErrConnFailed]) is returned, the engine takes
// from that connection no more and pushes nothing into it, and the other
// connections go on.
//
// # Held samples (design §2.8)
//
// Each connection holds at most its descriptor's MaxHeld samples. TryTake
// pops nothing from a connection at that bound; when every connection with
// data is at its bound it returns [ErrHeldLimit] (wrapping
// [parallax.ErrLimit]). A Sample names its held-table entry and the entry's
// epoch, so [Sample.Release] checks in O(1) that the sample is still held:
// a second release, or the release of a copy after the entry was reused, is
// [ErrNotHeld] and pushes nothing. A release of a live connection's sample
// is one push into the return ring, then a wake of the publisher only if it
// sleeps on the return wake ([ringbuf.Notifier.Notify]). A full return ring
// (the publisher broke its bound) fails the connection instead of waiting.
//
// # Connection life cycle (design §4.1)
//
//   - live: taken from, released into.
//   - closing ([Engine.CloseConn], or [Engine.Close] for all): not taken
//     from; releases still push. [Options.Finished] runs once the held
//     count is 0: the caller sends ReleaseConnection.
//   - orphaned ([Engine.OrphanConn], the publisher is gone): still taken
//     from until the data ring is empty; releases push nothing.
//     Options.Finished runs once the ring is empty and nothing is held: the
//     caller unmaps and sends ReleaseConnection.
//   - failed (a [*ConnError], or [Engine.FailConn]): not taken from;
//     releases push nothing (the router cuts the connection and the
//     publisher reclaims every chunk it delivered on it).
//   - removed ([Engine.RemoveConn]): the engine no longer touches the
//     connection segment. Samples still held stay readable (the caller
//     keeps the data segments mapped until [Conn.Held] is 0); their
//     release pushes nothing.
//
// # Waiting (design §3.4)
//
// [Engine.Take] spins for [ringbuf.WaitOptions.Spin] (a duration) and then
// sleeps on the data wake words of every takeable connection: one
// [ringbuf.Notifier] wait for one connection, one futex_waitv
// ([ringbuf.Waiter]) for up to 128. Beyond 128 it sleeps on the first 128
// words in slices of at most 1 ms and re-checks every connection after each
// slice, so a message on a connection past the 128th waits up to 1 ms
// longer. Without any connection it waits for AddConn (or Close). A
// WaitSet that waits on several engines at once gets their words
// from [Engine.Notifiers] and their readiness from [Engine.Ready].
//
// # Concurrency
//
// One process-local mutex guards the connections and their held tables;
// it is never held across a wait. TryTake may run on several goroutines
// at once (the mutex serialises the pops: each data ring still has one
// consumer at a time); only one Take or Wait may wait at a time. Release, Stats
// and the control methods (AddConn, AddSegment, RemoveSegment, CloseConn,
// OrphanConn, FailConn, RemoveConn, Close) may run on any goroutine.
// RemoveConn waits for a Take sleeping on the removed connection's wake
// word to wake up, so the caller may unmap the segment when it returns.
// With [Options.SingleGoroutine] the engine takes no mutex at all: the
// caller promises that every call comes from one goroutine at a time.
// The engine adds no shared-memory atomics of its own: every shared access
// is a [ringbuf] call (whose orderings ringbuf documents) or a
// [dataseg.Segment.View]. TryTake and Release allocate nothing, except the
// error of a connection that fails.
package ownedsub
