package segment

import (
	"errors"
	"fmt"
	"os"

	"github.com/parallax-ipc/parallax/internal/sys"
)

// OpenOptions tunes [Open]. The zero value maps read-write, accepts any size
// and does not require seals.
type OpenOptions struct {
	// ExpectedSize, when non-zero, is the size the sender announced; a
	// file of another size is refused with [ErrSizeMismatch].
	ExpectedSize int64
	// ReadOnly maps with PROT_READ only. A read-only fd must be opened
	// ReadOnly: mapping it read-write fails with EACCES.
	ReadOnly bool
	// RequireSeals refuses, with [ErrUnsealed], a file not sealed with at
	// least F_SEAL_SHRINK|F_SEAL_GROW. Clients should set it for segments
	// they receive: an unsealed segment can be shrunk by a peer, and a
	// later access would kill the process with SIGBUS.
	RequireSeals bool
}

// Open maps a segment received as an fd (typically over SCM_RIGHTS). It
// checks the size with fstat, the seals when asked, and derives the page
// size from fstat's block size (hugetlb memfds report the hugepage size).
//
// On success the returned segment owns f and closes it on Close; on error
// f is left open and still belongs to the caller.
func Open(f *os.File, opts OpenOptions) (*Mapped, error) {
	fd := int(f.Fd())
	link, _ := sys.FdPath(fd)
	st, err := sys.Fstat(fd)
	if err != nil {
		return nil, fmt.Errorf("open segment %s: %w", link, err)
	}
	if st.Size <= 0 {
		return nil, fmt.Errorf("open segment %s: empty file: %w", link, ErrSizeMismatch)
	}
	if opts.ExpectedSize != 0 && st.Size != opts.ExpectedSize {
		return nil, fmt.Errorf("open segment %s: size %d, expected %d: %w", link, st.Size, opts.ExpectedSize, ErrSizeMismatch)
	}
	if opts.RequireSeals {
		seals, err := sys.GetSeals(fd)
		if errors.Is(err, sys.EINVAL) {
			return nil, fmt.Errorf("open segment %s: file does not support seals: %w", link, ErrUnsealed)
		}
		if err != nil {
			return nil, fmt.Errorf("open segment %s: %w", link, err)
		}
		if want := sys.F_SEAL_SHRINK | sys.F_SEAL_GROW; seals&want != want {
			return nil, fmt.Errorf("open segment %s: seals %#x lack shrink|grow: %w", link, seals, ErrUnsealed)
		}
	}
	ps := pageSizeOf(st)
	m, err := mapFD(f, st.Size, ps, opts.ReadOnly, false)
	if err != nil {
		return nil, fmt.Errorf("open segment %s: %w", link, err)
	}
	if name, ok := memfdName(link); ok {
		m.name, m.kind = name, KindMemfd
		if ps > sys.PageSize() {
			m.kind = KindHugepage
		}
	} else {
		m.name, m.path, m.kind = link, link, KindFile
	}
	return m, nil
}
