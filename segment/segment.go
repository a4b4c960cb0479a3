package segment

import (
	"errors"
	"fmt"
	"os"
)

// Errors returned by this package, in addition to wrapped kernel errors and
// the cross-cutting [parallax.ErrNotSupported].
var (
	// ErrSizeMismatch reports a received segment whose size differs from
	// the size announced for it.
	ErrSizeMismatch = errors.New("segment size mismatch")
	// ErrUnsealed reports a received segment that is not sealed against
	// shrinking and growing, so a peer could resize it under its mappers.
	ErrUnsealed = errors.New("segment not sealed against resizing")
)

// Kind names a segment backend.
type Kind uint8

// Segment kinds. The zero value is KindUnknown.
const (
	KindUnknown Kind = iota
	// KindHeap is private anonymous memory of one process.
	KindHeap
	// KindMemfd is a sealed memfd on base pages.
	KindMemfd
	// KindHugepage is a sealed memfd on hugetlb pages.
	KindHugepage
	// KindFile is a mapped regular file.
	KindFile
)

var kindNames = [...]string{"unknown", "heap", "memfd", "hugepage", "file"}

// String returns the kind's lowercase name.
func (k Kind) String() string {
	if int(k) < len(kindNames) {
		return kindNames[k]
	}
	return fmt.Sprintf("Kind(%d)", k)
}

// Handle describes a segment to another process. It is a plain value that
// encodes with msgpack as is; the fd itself travels separately, over
// SCM_RIGHTS. It may be copied freely.
type Handle struct {
	// Name is the segment name (without the "parallax-" memfd prefix).
	Name string `msgpack:"name"`
	// Kind is the backend.
	Kind Kind `msgpack:"kind"`
	// Size is the file size in bytes (Len of the segment).
	Size int64 `msgpack:"size"`
	// PageSize is the page size backing the segment.
	PageSize int `msgpack:"page_size"`
	// ReadOnly reports a read-only mapping.
	ReadOnly bool `msgpack:"read_only"`
	// Path is the file path of a KindFile segment, empty otherwise.
	Path string `msgpack:"path,omitempty"`
}

// Segment is a mapped region of memory.
//
// Implementations are safe for concurrent use; Close may be called from any
// goroutine and more than once. Bytes aliases the mapping and is valid only
// until Close.
type Segment interface {
	// Bytes returns the segment's memory, Len bytes long. It aliases the
	// mapping and is only valid until Close.
	Bytes() []byte
	// Len returns the segment size in bytes.
	Len() int
	// Kind returns the backend.
	Kind() Kind
	// PageSize returns the page size backing the segment.
	PageSize() int
	// Handle describes the segment for another process.
	Handle() Handle
	// Close unmaps the memory and closes any fd. It is idempotent: calls
	// after the first return nil.
	Close() error
}

// Shareable is a Segment backed by an fd that can be sent to another
// process. [*Mapped] implements it.
type Shareable interface {
	Segment
	// File returns the fd owned by the segment, for sending over
	// SCM_RIGHTS. The segment keeps ownership: do not close it.
	File() *os.File
	// ReadOnlyFile returns a new read-only fd for the same memory, owned by
	// the caller; a mapping of it can never be made writable.
	ReadOnlyFile() (*os.File, error)
}

var (
	_ Shareable = (*Mapped)(nil)
	_ Segment   = (*Heap)(nil)
)
