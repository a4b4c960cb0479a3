//go:build linux

package sys

import (
	"fmt"
	"os"
	"strconv"

	"golang.org/x/sys/unix"
)

// memfd_create flags, re-exported so callers need not import x/sys/unix.
const (
	MFD_CLOEXEC       = unix.MFD_CLOEXEC
	MFD_ALLOW_SEALING = unix.MFD_ALLOW_SEALING
	MFD_NOEXEC_SEAL   = unix.MFD_NOEXEC_SEAL
	MFD_HUGETLB       = unix.MFD_HUGETLB
	MFD_HUGE_2MB      = unix.MFD_HUGE_2MB
	MFD_HUGE_1GB      = unix.MFD_HUGE_1GB
)

// File seals (fcntl F_ADD_SEALS / F_GET_SEALS).
const (
	F_SEAL_SEAL   = unix.F_SEAL_SEAL
	F_SEAL_SHRINK = unix.F_SEAL_SHRINK
	F_SEAL_GROW   = unix.F_SEAL_GROW
	F_SEAL_WRITE  = unix.F_SEAL_WRITE
	F_SEAL_EXEC   = unix.F_SEAL_EXEC
)

// MemfdCreate creates an anonymous memory file named name (the kernel shows
// it as "/memfd:<name>") with flags, and returns its fd. The caller owns the
// fd.
func MemfdCreate(name string, flags int) (int, error) {
	fd, err := unix.MemfdCreate(name, flags)
	if err != nil {
		return -1, fmt.Errorf("memfd_create %q: %w", name, err)
	}
	return fd, nil
}

// HugeFlag returns the MFD_HUGETLB|MFD_HUGE_* flags selecting hugetlb pages
// of pageSize bytes (a power of two), for [MemfdCreate].
func HugeFlag(pageSize int) (int, error) {
	if pageSize <= 0 || pageSize&(pageSize-1) != 0 {
		return 0, fmt.Errorf("hugepage size %d: %w", pageSize, unix.EINVAL)
	}
	shift := 0
	for 1<<shift < pageSize {
		shift++
	}
	return unix.MFD_HUGETLB | shift<<unix.MFD_HUGE_SHIFT, nil
}

// AddSeals adds seals (F_SEAL_*) to the memfd fd.
func AddSeals(fd int, seals int) error {
	if _, err := unix.FcntlInt(uintptr(fd), unix.F_ADD_SEALS, seals); err != nil {
		return fmt.Errorf("add seals %#x: %w", seals, err)
	}
	return nil
}

// GetSeals returns the seals (F_SEAL_*) set on fd. A file that does not
// support sealing yields EINVAL.
func GetSeals(fd int) (int, error) {
	s, err := unix.FcntlInt(uintptr(fd), unix.F_GET_SEALS, 0)
	if err != nil {
		return 0, fmt.Errorf("get seals: %w", err)
	}
	return s, nil
}

// Ftruncate sets the size of the file fd to size bytes.
func Ftruncate(fd int, size int64) error {
	if err := unix.Ftruncate(fd, size); err != nil {
		return fmt.Errorf("ftruncate to %d bytes: %w", size, err)
	}
	return nil
}

// Stat is the subset of fstat(2) Parallax uses.
type Stat struct {
	// Size is the file size in bytes.
	Size int64
	// Blksize is the preferred I/O block size; for a hugetlb file it is the
	// hugepage size.
	Blksize int64
	// Mode is the raw st_mode.
	Mode uint32
}

// Fstat returns size, block size and mode of fd.
func Fstat(fd int) (Stat, error) {
	var st unix.Stat_t
	if err := unix.Fstat(fd, &st); err != nil {
		return Stat{}, fmt.Errorf("fstat: %w", err)
	}
	return Stat{Size: st.Size, Blksize: int64(st.Blksize), Mode: st.Mode}, nil
}

// ReopenReadOnly opens a new, read-only open file description of the file
// behind fd through /proc/self/fd/N (O_RDONLY|O_CLOEXEC) and returns its fd.
// A mapping of the new fd cannot be made writable: mmap(PROT_WRITE,
// MAP_SHARED) and mprotect to PROT_WRITE both fail with EACCES. The caller
// owns the new fd.
func ReopenReadOnly(fd int) (int, error) {
	path := "/proc/self/fd/" + strconv.Itoa(fd)
	nfd, err := unix.Open(path, unix.O_RDONLY|unix.O_CLOEXEC, 0)
	if err != nil {
		return -1, fmt.Errorf("reopen %s read-only: %w", path, err)
	}
	return nfd, nil
}

// FdPath returns the target of /proc/self/fd/N, for example
// "/memfd:parallax-x (deleted)" or a file path.
func FdPath(fd int) (string, error) {
	return os.Readlink("/proc/self/fd/" + strconv.Itoa(fd))
}

// Close closes fd.
func Close(fd int) error {
	if err := unix.Close(fd); err != nil {
		return fmt.Errorf("close fd %d: %w", fd, err)
	}
	return nil
}
