package mempool

import (
	"errors"
	"fmt"

	"github.com/parallax-ipc/parallax"
)

// Errors returned by this package. Validation failures of chunk references
// wrap the root sentinels [parallax.ErrInvalidRef], [parallax.ErrStaleRef] and
// [parallax.ErrNotHeld]; exhaustion wraps [parallax.ErrPoolExhausted]; a bad
// management area wraps [parallax.ErrCorrupt].
var (
	// ErrBadClass reports a [Class] with a chunk size that is not a positive
	// multiple of [ChunkAlign] or a count outside [1, MaxCount].
	ErrBadClass = errors.New("invalid size class")
	// ErrRegion reports a memory region that is too small or misaligned for
	// the pool.
	ErrRegion = errors.New("unsuitable memory region")
	// ErrNoPayload reports a payload access on a pool attached without a
	// payload region.
	ErrNoPayload = errors.New("payload region not mapped")
	// ErrTooLarge reports a loan request larger than every size class.
	ErrTooLarge = errors.New("no size class fits")
	// ErrDuplicatePool reports a pool id added twice to a [Set].
	ErrDuplicatePool = errors.New("duplicate pool id")
	// ErrRefCountOverflow reports an AddRef that would exceed [MaxRefCount].
	ErrRefCountOverflow = errors.New("reference count overflow")
)

// Pre-allocated errors for the loan path: exhaustion may be frequent (a
// discard-oldest publisher hits it by design), so it must not allocate.
var (
	errExhausted = fmt.Errorf("loan chunk: %w", parallax.ErrPoolExhausted)
)

// A RefError reports a chunk reference rejected by validation. Err wraps
// [parallax.ErrInvalidRef], [parallax.ErrStaleRef], [parallax.ErrNotHeld] or
// [ErrRefCountOverflow].
type RefError struct {
	Op  string            // "release", "addref", "payload", ...
	Ref parallax.ChunkRef // the rejected reference
	Err error
}

func (e *RefError) Error() string { return e.Op + " " + e.Ref.String() + ": " + e.Err.Error() }

// Unwrap returns the underlying sentinel.
func (e *RefError) Unwrap() error { return e.Err }

func refErr(op string, ref parallax.ChunkRef, err error) error {
	return &RefError{Op: op, Ref: ref, Err: err}
}
