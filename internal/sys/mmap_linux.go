//go:build linux

package sys

import (
	"fmt"
	"os"

	"golang.org/x/sys/unix"
)

// Protection and mapping flags for [Mmap] and [Mprotect].
const (
	PROT_NONE  = unix.PROT_NONE
	PROT_READ  = unix.PROT_READ
	PROT_WRITE = unix.PROT_WRITE

	MAP_SHARED    = unix.MAP_SHARED
	MAP_PRIVATE   = unix.MAP_PRIVATE
	MAP_ANONYMOUS = unix.MAP_ANONYMOUS
	MAP_POPULATE  = unix.MAP_POPULATE
)

// madvise advice values for [Madvise].
const (
	MADV_NORMAL     = unix.MADV_NORMAL
	MADV_WILLNEED   = unix.MADV_WILLNEED
	MADV_DONTNEED   = unix.MADV_DONTNEED
	MADV_HUGEPAGE   = unix.MADV_HUGEPAGE
	MADV_NOHUGEPAGE = unix.MADV_NOHUGEPAGE
	MADV_DONTDUMP   = unix.MADV_DONTDUMP
)

var pageSize = os.Getpagesize()

// PageSize returns the base page size of the system.
func PageSize() int { return pageSize }

// RoundUp rounds n up to a multiple of page, which must be a power of two.
func RoundUp(n, page int) int { return (n + page - 1) &^ (page - 1) }

// Mmap maps length bytes of fd at offset with prot and flags. The length is
// rounded up to pageSize (the page size of the file: the base page size, or
// the hugepage size for a hugetlb file; 0 means the base page size), and the
// returned slice covers the whole rounded mapping: munmap of a hugetlb
// mapping with an unrounded length fails with EINVAL and leaks it. Pass fd -1
// with MAP_ANONYMOUS for anonymous memory.
//
// Release the mapping with [Munmap], passing the slice returned here.
func Mmap(fd int, offset int64, length, pageSize, prot, flags int) ([]byte, error) {
	if pageSize == 0 {
		pageSize = PageSize()
	}
	if length <= 0 {
		return nil, fmt.Errorf("mmap %d bytes: %w", length, unix.EINVAL)
	}
	n := RoundUp(length, pageSize)
	b, err := unix.Mmap(fd, offset, n, prot, flags)
	if err != nil {
		return nil, fmt.Errorf("mmap %d bytes: %w", n, err)
	}
	return b, nil
}

// Munmap unmaps a mapping returned by [Mmap]. b may be resliced to a shorter
// length, but must start at the start of the mapping.
func Munmap(b []byte) error {
	if err := unix.Munmap(b[:cap(b)]); err != nil {
		return fmt.Errorf("munmap %d bytes: %w", cap(b), err)
	}
	return nil
}

// Mprotect changes the protection of the pages spanned by b.
func Mprotect(b []byte, prot int) error {
	if err := unix.Mprotect(b, prot); err != nil {
		return fmt.Errorf("mprotect %d bytes to %#x: %w", len(b), prot, err)
	}
	return nil
}

// Madvise gives the kernel advice about the pages spanned by b.
func Madvise(b []byte, advice int) error {
	if err := unix.Madvise(b, advice); err != nil {
		return fmt.Errorf("madvise %d bytes (%d): %w", len(b), advice, err)
	}
	return nil
}
