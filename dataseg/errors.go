package dataseg

import "errors"

// Errors returned by this package. Validation failures also wrap a root
// sentinel: a header that disagrees with its [Desc], and a chunk header whose
// length exceeds the chunk size, wrap [parallax.ErrCorrupt]; a slot out of
// range wraps [parallax.ErrInvalidRef].
var (
	// ErrDesc reports a [Desc] this build cannot lay out (chunk size, count,
	// page size or flags out of range).
	ErrDesc = errors.New("invalid data segment descriptor")
	// ErrSlot reports a slot index at or beyond the segment's count.
	ErrSlot = errors.New("slot out of range")
	// ErrLength reports a chunk header whose length exceeds the chunk size.
	ErrLength = errors.New("chunk length exceeds chunk size")
)
