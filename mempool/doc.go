// Package mempool implements size-class chunk pools over caller-provided
// memory: lock-free, with reference counts and generations in a
// management area beside the payload.
//
// It is not how publishers and subscribers share memory. Since issue 12
// every publisher owns its data segments (package dataseg) and counts its
// chunks in its own process memory (see the README's "Memory" section);
// the router-wide pools, the management segment every client mapped
// read-write, the hold tables and the idle sweep that used this package
// were removed with that change. What remains is used in one process:
// package buffer's Pool lays its size classes out in one heap
// segment and allocates pipeline buffers from them without allocating Go
// memory, and the tests/shm stress tests and raw-ring baselines use it
// between processes they set up themselves.
//
// A [Pool] is one size class: Count chunks of ChunkSize bytes in a payload
// region, managed through a separate management area (both []byte regions
// the caller owns: [HeapRegion], or a mapping). [Format] lays a pool out;
// [Attach] validates an existing one, as a second process would. A [Set]
// indexes pools by id and routes [Set.Loan] to the smallest size class
// that fits.
//
// # Management area layout
//
// All words are little-endian fixed-width integers, every atomic word is
// 8-byte aligned, and hot words sit on their own 128-byte line:
//
//	offset 0    +------------------------------------------------------+
//	            | header (128 B, written once by Format)               |
//	            |  0 magic "PLXPOOL\0"  8 version u32  12 pool id u32  |
//	            | 16 chunk size u32    20 count u32                    |
//	            | 24 bitmap off u64    32 headers off u64              |
//	            | 40 mgmt size u64     48 payload size u64             |
//	offset 128  +------------------------------------------------------+
//	            | loaners (128 B): 0 loans  16 high water  24 failed   |
//	offset 256  +------------------------------------------------------+
//	            | releasers (128 B): 8 frees                           |
//	offset 384  +------------------------------------------------------+
//	            | free bitmap: ceil(Count/8) lines of 128 B; the first |
//	            | u64 of line w holds slots 8w..8w+7 in bits 0..7      |
//	            | (1 = free), the rest of the line is padding          |
//	headers off +------------------------------------------------------+
//	            | chunk header[0]  (64 B)                              |
//	            |   0 ctl u64 = gen:24 | loaner:16 | refcount:24       |
//	            |   8 length  16 seq  24 timestamp (unix ns)           |
//	            |  32 origin  40..63 reserved                          |
//	            | chunk header[1] ...                                  |
//	            | chunk header[Count-1]                                |
//	            +------------------------------------------------------+
//
// The payload region holds only bytes: chunk i is payload[i*ChunkSize :
// (i+1)*ChunkSize]. ChunkSize is a multiple of 64, so every chunk is
// 64-byte aligned when the region is (segments are page aligned;
// [HeapRegion] gives 128). Readers may map it read-only.
//
// # State and ordering rules
//
// The ctl word of a chunk header is the authority on a slot's state; the
// bitmap only accelerates finding a free one. A slot is free when its
// refcount is 0. Generations start at 1 and never become 0
// ([parallax.NextGen]), so a [parallax.ChunkRef] made under one generation
// is stale forever once the slot is freed.
//
//   - Loan: CAS a set bit of the bitmap to 0 (acquire, pairs with the Or of
//     the Release that freed the slot), then CAS ctl from (g, 0, 0) to
//     (g, owner, 1). If ctl is not free, the bit was wrong: it stays clear
//     and the scan goes on. Metadata is zeroed with plain stores: the loaner
//     owns the slot until it publishes the ref.
//   - AddRef / Release: CAS loops on ctl that require generation == ref's
//     and refcount > 0, so a stale ref, a double release or a forged ref
//     fails with an error and never frees twice or underflows. The last
//     Release stores (g+1, 0, 0) and then sets the bit with an atomic Or
//     (release, pairs with the next Loan).
//   - Publication: metadata and payload written by the loaner become
//     visible to holders through whatever hands them the ref (a ring push
//     and pop, or AddRef followed by a channel send in-process).
//
// A process killed between the two steps of Loan or of the last Release
// leaves a slot free by ctl with its bit clear: unusable but never handed
// out twice. [Pool.Audit] counts such slots.
//
// # Validation
//
// Every ref may come from shared memory written by a faulty peer. Pool
// methods check the pool id, the slot against the count cached at Attach
// (never re-read from shared memory), generation != 0, generation == ctl's
// and refcount > 0, and return errors wrapping [parallax.ErrInvalidRef],
// [parallax.ErrStaleRef] or [parallax.ErrNotHeld]. They never panic and
// never index out of range. Attach recomputes every offset and size from
// the class and rejects a header that disagrees with [parallax.ErrCorrupt].
//
// # Cost
//
// Loan and Release take no lock, make no syscall and allocate nothing; a
// loan is typically one load and two CAS plus the statistics adds.
//
// Loans walk the pool from a process-local cursor (next fit) and prefetch,
// for writing, the header and first payload line of the slot two ahead:
// those lines were last written by whichever core released that slot, and
// fetching them early overlaps the transfer with the current message
// instead of stalling the next atomic instruction on it. A bitmap word
// covers only 8 slots and has a line of its own, so a subscriber freeing
// slots a few samples behind the publisher's loans works on other lines.
package mempool
