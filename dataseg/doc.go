// Package dataseg lays out and validates a publisher's data segment: the
// shared memory that holds one publisher's chunks, written only by that
// publisher and mapped read-only by its subscribers (issue 12,
// docs/design/memory-ownership.md §1.1–1.2).
//
// The router creates each segment for one publisher (a sealed memfd,
// mode 0600, named "plx:<domain>:p<pub>.<index>"; 2 MiB hugetlb pages for
// large segments), lays it out with [Format], unmaps it and keeps only its
// fds. It hands the publisher a read-write fd and each subscriber connected
// to that publisher a read-only one; no other process gets an fd. The
// publisher and its subscribers validate the segment with [Attach] against
// the [Desc] the router sent them. A segment holds one size class: Count
// chunks of ChunkSize bytes. Nothing in it is a reference count or an
// allocation bit: the publisher keeps all accounting in its own process
// memory, where no subscriber can write it, so a subscriber that dies
// leaves nothing in the segment to repair, and a publisher that dies takes
// its accounting with it (the kernel frees the memfd at the last unmap).
//
// How many chunks a publisher's segments hold (MaxLoans + History + the
// per-connection bounds), when more segments are added and when they are
// retired is decided by the router (package roudi, and the README's
// "Memory" section); this package only lays out and checks one segment.
//
// # Layout
//
// All fields are little-endian fixed-width integers:
//
//	offset 0    +---------------------------------------------------------+
//	            | segment header (128 B; 0..63 written once by Format)    |
//	            |   0 magic u64 "PLXDSEG1"     8 layout version u32       |
//	            |  12 segment index u16       14 flags u16 (bit0 hugetlb) |
//	            |  16 publisher id u32        20 chunk size u32 (k × 64)  |
//	            |  24 count u32               28 header stride u32 (= 64) |
//	            |  32 headers offset u64      40 payload offset u64       |
//	            |  48 segment size u64        56 page size u32            |
//	            |  60 reserved u32 (0)                                    |
//	            |  64 published u64  72 delivered u64  80 dropped u64     |
//	            |  88 unconnected u64: the owner's counters (counters.go) |
//	            |  96..127 reserved (0)                                   |
//	offset 128  +---------------------------------------------------------+
//	            | chunk header[0..Count-1], 64 B each:                    |
//	            |   0 length u32    4 flags u32      8 seq u64            |
//	            |  16 stamp i64    24 pts i64       32 dts i64            |
//	            |  40 duration i64 48 offset u64    56 user seq u64       |
//	payload off +--- rounded up to min(pow2ceil(ChunkSize), PageSize) ----+
//	            | payload[i] = payload off + i × ChunkSize                |
//	size        +--- rounded up to PageSize ------------------------------+
//
// Headers sit in a table of their own rather than before each payload, so
// payload chunks stay aligned to their size (up to the page size) relative
// to the segment base. Every offset is a function of (ChunkSize, Count,
// PageSize): see [Size] and [PayloadOffset].
//
// # Ordering
//
// No word in a data segment is accessed atomically. Chunk headers and
// payload are written with plain stores by the owning publisher while it
// holds the chunk as a loan ([Segment.Chunk], [Segment.SetMeta]), and are
// published by the push of the chunk's ref into a connection's data ring:
// the ring's release store of its tail orders them before a subscriber's
// acquire load of the tail and its reads in [Segment.View]. The subscriber's
// push of the ref into the return ring (release) and the publisher's pop
// (acquire) order the subscriber's last reads before the publisher reuses
// the chunk. An honest publisher never writes a chunk another process may
// read; a dishonest one can only confuse its own subscribers.
//
// # Validation
//
// A subscriber trusts nothing in the segment:
//
//   - [Attach] recomputes every offset from the Desc and requires the
//     in-segment header to equal it field by field (errors wrap
//     [parallax.ErrCorrupt]). Count, chunk size and offsets are cached in the
//     [Segment] and never re-read from shared memory.
//   - [Segment.View] checks the slot against the cached count ([ErrSlot],
//     [parallax.ErrInvalidRef]), reads the chunk header once into a private
//     [Meta], rejects a length above the chunk size ([ErrLength],
//     [parallax.ErrCorrupt]) and returns a slice whose length and capacity
//     end inside that chunk. It never panics, whatever the memory holds.
//
// The generation of a chunk is not in the segment: it travels in the
// [parallax.ChunkRef] and lives in the publisher's private table. Which
// publisher a chunk came from is a property of the connection it arrived
// on, not of the segment's contents.
//
// The package uses no unsafe code and no atomics; it works on the []byte of
// a mapping that the caller owns.
package dataseg
