// Package ringbuf implements the lock-free single-producer single-consumer
// rings that carry [parallax.ChunkRef] values between processes, their
// overflow policies, the futex-based [Notifier] a side sleeps on, and the
// connection segment ([Conn]) that pairs them for one publisher and one
// subscriber.
//
// Everything lives in []byte regions of shared memory handed in by the
// caller (a segment mapping, or a heap slice in tests): [Format] lays out a
// ring, [Attach] maps an existing one after validating its header. The
// package owns no mappings and makes no allocation, takes no lock and makes
// no system call on its hot paths (push, pop, notify) unless a peer sleeps.
//
// # Ring layout
//
// All words little-endian, offsets in bytes; every atomic is naturally
// aligned and words written by different sides sit on different 128-byte
// lines (LayoutVersion 2, see TestLayout):
//
//	  0 +---------------------------------------------------------+
//	    | magic u64 | version u32 | policy u32 | capacity u32 | - |  read-only after Format
//	128 +---------------------------------------------------------+
//	    | head u64 = pos u32 | pops u32<<32                       |  CAS: consumer (pop),
//	    |                                                         |       producer (discard)
//	256 +---------------------------------------------------------+
//	    | tail u64 (pos u32) | dropped u64                        |  producer-owned
//	384 +---------------------------------------------------------+
//	    | waitFlag u32 | waitSeq u32 (futex) | closed u32         |  BlockProducer handshake
//	512 +---------------------------------------------------------+
//	    | slot[0] u64 | slot[1] u64 | ... | slot[capacity-1] u64  |  ChunkRefs, atomics
//	    +---------------------------------------------------------+
//
// Positions are free-running uint32 counters; the slot of position p is
// p & (capacity-1), and tail-head (mod 2^32) is the length, so capacity is
// at most 2^30. The zero ChunkRef never enters a ring.
//
// # Ordering rules
//
// All accesses to shared words use sync/atomic, whose operations are
// sequentially consistent in Go (a locked instruction for a store or
// read-modify-write on x86-64, a plain load for a load), except one: a
// push stores its slot with release ordering only (a plain store on amd64
// without the race detector), because the seq-cst tail store after it
// publishes it and no handshake reads the slot. That saves a
// locked instruction per push (~6.5 ns on the machines measured). The
// process-local index views are stored the same way.
//
//   - Publish: the producer stores the slot, then stores tail. The consumer
//     loads head, then tail, then the slot: seeing tail > p guarantees it
//     sees slot p.
//   - Claim: the consumer and a discarding producer both read slot[head]
//     and then CAS head from the value they read. Exactly one CAS succeeds;
//     the winner owns the ref, the loser retries. A pop moves head from
//     (pos, pops) to (pos+1, pops+1), a discard to (pos+1, pops): only the
//     consumer advances the pop count.
//   - Reuse: the producer writes slot t&mask only after loading a head
//     with t-head < capacity, i.e. after the CAS that claimed position
//     t-capacity — whose winner had already read the slot.
//   - Blocked producer (Dekker): the producer samples waitSeq, stores
//     waitFlag=1, then re-checks head; the consumer CASes head, then loads
//     waitFlag and, when set, clears it, bumps waitSeq and calls FutexWake.
//     Sequential consistency guarantees that one of them sees the other, so
//     the producer never sleeps on a ring that has space. A consumer with a
//     wake level ([Ring.SetWakeLevel]) defers the wake until the ring has
//     drained to it; its producer then sleeps on a ring with some space
//     until the mark is reached (or its 100 ms re-check).
//   - Notifier (Dekker): the producer stores tail, then loads sleeping and,
//     when set, clears it, bumps seq and calls FutexWake; the consumer
//     samples seq, stores sleeping=1, re-checks its rings, then calls
//     FutexWait(seq, sampled). A wake that races with the sleep changes seq,
//     so FutexWait returns at once.
//
// # Validation
//
// Each side trusts nothing the other writes. Head is written by the consumer
// (and, under DiscardOldest, by the producer); tail, slots and dropped by the
// producer; and any process holding the mapping can write anything. What an
// honest pair guarantees is 0 <= tail-head <= capacity (mod 2^32) and a tail
// word whose high 32 bits are zero; every read of the peer's index checks
// that, and an impossible state yields an error wrapping [ErrCorruptRing]
// (and [parallax.ErrCorrupt]) instead of entries:
//
//   - Consumer: pop reads the shared tail only when its local view of tail
//     shows no entry, and checks it there (a compare, no extra atomic). A
//     producer that discards may move head between the consumer's head
//     and tail loads, making a stale head look more than a capacity behind;
//     so the consumer declares corruption only if head is unchanged when
//     it looks again, and otherwise retries (at most a bounded number of
//     times, then reports the ring empty for now).
//   - Producer: push reads the shared head only when its local view says
//     full, and checks it against its own exact tail. A head moved backward
//     behind the view, or past tail, fails the same distance check. A head
//     moved backward within the window [tail-capacity, tail] is
//     indistinguishable from a consumer that has not popped.
//   - The direction of tail is not checked: any tail within a capacity of
//     head is a state an honest producer can reach, and the entries it
//     exposes are refs the producer wrote, which the consumer validates.
//   - Loops are bounded: a push's discard loop by maxPushRetries (a head
//     that keeps moving without making room is corruption), a pop's claim
//     loop by maxPopRetries. A ring never holds more than [Ring.Cap]
//     entries, so callers bound drain loops by it; a peer still pushing
//     cannot keep a drain going.
//   - [Ring.Len] is 0 on impossible indices; [Ring.Check] validates the
//     indices without popping (tests and tools; the router reads no ring).
//
// # Connection segment
//
// One publisher–subscriber connection (issue 12, docs/design/memory-ownership.md
// §1.4) is one segment of its own: a memfd the router creates, seals,
// fchmods 0600, lays out with [FormatConn] and unmaps, then hands read-write
// to exactly the two processes of the connection, which validate it with
// [AttachConn] against the [ConnDesc] the router sent. No other process has
// an fd of it, so its words are shared with one peer only, and whatever
// either end writes there can spoil that connection and nothing else:
//
//	   0 +------------------------------------------------------------------+
//	     | conn header (128 B, router-written, cross-checked by both sides) |
//	     |   0 magic "PLXCONN1"  8 version u32  12 data ring policy u32     |
//	     |  16 conn id u32  20 pub id u32  24 sub id u32  28 max held u32   |
//	     |  32 data cap u32  36 return cap u32  40 bound u32  44 0 u32      |
//	     |  48 data ring off u64  56 return ring off u64                    |
//	     |  64 data wake off u64  72 return wake off u64  80 size u64       |
//	     |  88..127 reserved (0)                                            |
//	 128 +------------------------------------------------------------------+
//	     | data wake (Notifier): the subscriber sleeps here                 |
//	 256 +------------------------------------------------------------------+
//	     | return wake (Notifier): the publisher sleeps here                |
//	 384 +------------------------------------------------------------------+
//	     | data ring (DiscardOldest | BlockProducer, cap = DataCap):       |
//	     |   producer = publisher, consumer = subscriber                    |
//	     +--- rounded up to 128 B -------------------------------------------+
//	     | return ring ([Reject], cap = ReturnCap ≥ Bound):                 |
//	     |   producer = subscriber, consumer = publisher                    |
//	size +--- rounded up to 4 KiB ([ConnSize]) ----------------------------+
//
// The return ring never discards and never blocks: a push on a full one
// fails with [ErrFull]. The publisher keeps at most Bound chunks outstanding
// on the connection, and every one of them is in the data ring, in the
// subscriber's hands or in the return ring, so an honest publisher never
// lets it fill. A subscriber's release is one push into the return ring
// (and a wake of the publisher only if it sleeps there, for space or a
// loan); the publisher drains it with [Conn.PopBatch], one tail load and
// one head CAS per batch, and accepts a ref only if it delivered that
// chunk on this connection. Returned chunks go onto the publisher's LIFO
// free list, so the next loan gets the most recently returned, cache-hot
// chunk. Both rings keep their own validation (below),
// so corrupt indices in one ring are errors for that ring, and the
// connection, only. AttachConn caches every offset and capacity; nothing is
// re-read from the header afterwards.
//
// # Notifier layout
//
//	  0 +--------------------------------------------------------------+
//	    | magic u64 | version u32 | closed u32 | seq u32 | sleeping u32 |
//	 24 | wakes u64 | sleeps u64 | padding                             |
//	128 +--------------------------------------------------------------+
//
// A connection segment has two: the data wake, where the subscriber sleeps
// for data, and the return wake, where the publisher sleeps for returns
// (block-producer space at the bound, a waiting loan). A subscriber with
// several connections (or a wait set) sleeps on all their seq words at once
// with a [Waiter] (futex_waitv). Waking is the only system call on the data
// path, and it happens only when the other side said it sleeps; the wakes
// counter lets tests and tools verify that.
package ringbuf
