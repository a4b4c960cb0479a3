// Package atomiccount counts the atomic operations this process makes on
// shared-memory words (design docs/design/memory-ownership.md §7.1, §7.2).
//
// It counts only in a binary built with the parallax_countatomics build
// tag: package ringbuf then reaches every shared word (ring indices and
// slots, notifier words) through wrappers that call [Add] before the
// operation. In the default build those wrappers are type aliases of
// sync/atomic's types, [Enabled] is false, [Add] does nothing and
// [Snapshot] returns zeros, so the data path pays nothing.
//
// The counters are process-local. A benchmark takes a [Snapshot] before
// and after the measured messages and reports the difference per message;
// a child process reports its own difference to the parent.
package atomiccount

// Counts is a snapshot of the counters.
type Counts struct {
	// Ops counts every atomic operation on a shared word: loads, stores,
	// compare-and-swaps, adds and swaps.
	Ops uint64
	// Locked counts the read-modify-write and store operations among Ops:
	// those that are a locked instruction (LOCK-prefixed or XCHG) on
	// amd64. Atomic loads are plain moves there.
	Locked uint64
}

// Sub returns c − d, the operations made between snapshot d and c.
func (c Counts) Sub(d Counts) Counts {
	return Counts{Ops: c.Ops - d.Ops, Locked: c.Locked - d.Locked}
}
