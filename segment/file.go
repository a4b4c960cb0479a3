package segment

import (
	"fmt"
	"os"

	"github.com/parallax-ipc/parallax/internal/sys"
)

// CreateFile creates a new file at path (it must not exist: an existing file
// may be mapped by someone whom truncating it would crash), sizes it to size
// bytes and maps it read-write and shared. On a hugetlbfs mount size must be
// a multiple of the hugepage size.
func CreateFile(path string, size int64) (_ *Mapped, err error) {
	if size <= 0 {
		return nil, fmt.Errorf("create file segment %q of %d bytes: %w", path, size, sys.EINVAL)
	}
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		return nil, fmt.Errorf("create file segment: %w", err)
	}
	defer func() {
		if err != nil {
			f.Close()
			os.Remove(path)
		}
	}()
	if err := f.Truncate(size); err != nil {
		return nil, fmt.Errorf("create file segment: %w", err)
	}
	return mapFile(f, path, false)
}

// OpenFile maps the existing file at path, read-only or read-write, with
// its current size.
func OpenFile(path string, readOnly bool) (_ *Mapped, err error) {
	flag := os.O_RDWR
	if readOnly {
		flag = os.O_RDONLY
	}
	f, err := os.OpenFile(path, flag, 0)
	if err != nil {
		return nil, fmt.Errorf("open file segment: %w", err)
	}
	defer func() {
		if err != nil {
			f.Close()
		}
	}()
	return mapFile(f, path, readOnly)
}

func mapFile(f *os.File, path string, readOnly bool) (*Mapped, error) {
	st, err := sys.Fstat(int(f.Fd()))
	if err != nil {
		return nil, fmt.Errorf("map file segment %q: %w", path, err)
	}
	m, err := mapFD(f, st.Size, pageSizeOf(st), readOnly, false)
	if err != nil {
		return nil, fmt.Errorf("map file segment %q: %w", path, err)
	}
	m.kind, m.name, m.path = KindFile, path, path
	return m, nil
}

// pageSizeOf derives the page size backing a file from fstat's block size:
// hugetlb files (memfd or hugetlbfs) report the hugepage size. Anything that
// is not a power-of-two multiple of the base page size counts as base pages.
func pageSizeOf(st sys.Stat) int {
	base := sys.PageSize()
	b := st.Blksize
	if b <= int64(base) || b&(b-1) != 0 || b > 1<<30 {
		return base
	}
	return int(b)
}
