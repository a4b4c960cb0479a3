package segment

import (
	"errors"
	"fmt"
	"os"
	"runtime"
	"strings"
	"sync/atomic"

	"github.com/parallax-ipc/parallax/internal/sys"
)

// mapping is what a segment owns: the full, page-rounded mapping and the fd.
// It is separate from the segment so a runtime cleanup can release it
// without keeping the segment reachable.
type mapping struct {
	mem []byte   // whole mapping, len == rounded length
	f   *os.File // nil for anonymous memory
}

func (m *mapping) release() error {
	var errs []error
	if m.mem != nil {
		if err := sys.Munmap(m.mem); err != nil {
			errs = append(errs, err)
		}
		m.mem = nil
	}
	if m.f != nil {
		if err := m.f.Close(); err != nil {
			errs = append(errs, err)
		}
		m.f = nil
	}
	return errors.Join(errs...)
}

func releaseMapping(m *mapping) { _ = m.release() }

// Mapped is an fd-backed segment: a memfd (base or huge pages), a mapped
// file, or a segment opened from a received fd.
//
// Create one with [NewMemfd], [NewHugepage], [CreateFile], [OpenFile] or
// [Open]; the zero value is invalid. A Mapped must not be copied. Its
// methods are safe for concurrent use. Close unmaps the memory and closes
// the fd; it is idempotent. Bytes aliases the mapping and is only valid
// until Close.
type Mapped struct {
	mem      []byte // first size bytes of the mapping
	mapping  *mapping
	file     *os.File
	kind     Kind
	name     string
	path     string
	pageSize int
	readOnly bool
	fallback string

	closed  atomic.Bool
	cleanup runtime.Cleanup
}

// mapFD maps size bytes of f (rounded up to pageSize) and returns a Mapped
// owning f and the mapping. On error f is left open.
func mapFD(f *os.File, size int64, pageSize int, readOnly, populate bool) (*Mapped, error) {
	if size <= 0 || int64(int(size)) != size {
		return nil, fmt.Errorf("map %d bytes: %w", size, sys.EINVAL)
	}
	prot, flags := sys.PROT_READ|sys.PROT_WRITE, sys.MAP_SHARED
	if readOnly {
		prot = sys.PROT_READ
	}
	if populate {
		flags |= sys.MAP_POPULATE
	}
	mem, err := sys.Mmap(int(f.Fd()), 0, int(size), pageSize, prot, flags)
	if err != nil {
		return nil, err
	}
	m := &Mapped{
		mem:      mem[:size],
		mapping:  &mapping{mem: mem, f: f},
		file:     f,
		pageSize: pageSize,
		readOnly: readOnly,
	}
	m.cleanup = runtime.AddCleanup(m, releaseMapping, m.mapping)
	return m, nil
}

// Bytes returns the segment's memory. It aliases the mapping and is only
// valid until Close. Writing to a read-only segment faults.
func (m *Mapped) Bytes() []byte { return m.mem }

// Len returns the segment size in bytes (the file size).
func (m *Mapped) Len() int { return len(m.mem) }

// Kind returns the backend.
func (m *Mapped) Kind() Kind { return m.kind }

// PageSize returns the page size backing the segment: the hugepage size for
// a hugetlb segment, the base page size otherwise.
func (m *Mapped) PageSize() int { return m.pageSize }

// ReadOnly reports whether the mapping is read-only.
func (m *Mapped) ReadOnly() bool { return m.readOnly }

// FallbackReason says why a segment created by [NewHugepage] uses base
// pages; it is empty when hugepages were used or not asked for.
func (m *Mapped) FallbackReason() string { return m.fallback }

// Handle describes the segment for another process.
func (m *Mapped) Handle() Handle {
	return Handle{
		Name:     m.name,
		Kind:     m.kind,
		Size:     int64(len(m.mem)),
		PageSize: m.pageSize,
		ReadOnly: m.readOnly,
		Path:     m.path,
	}
}

// File returns the fd the segment owns, to send it over SCM_RIGHTS. The
// segment keeps ownership: do not close it, and do not use it after Close.
func (m *Mapped) File() *os.File { return m.file }

// ReadOnlyFile opens a new read-only fd for the segment's memory through
// /proc/self/fd/N. The caller owns the returned file. A mapping of it can
// never be made writable: mmap(PROT_WRITE) and mprotect fail with EACCES.
func (m *Mapped) ReadOnlyFile() (*os.File, error) {
	if m.closed.Load() {
		return nil, fmt.Errorf("reopen segment %q read-only: %w", m.name, os.ErrClosed)
	}
	fd, err := sys.ReopenReadOnly(int(m.file.Fd()))
	if err != nil {
		return nil, fmt.Errorf("reopen segment %q read-only: %w", m.name, err)
	}
	return os.NewFile(uintptr(fd), m.file.Name()+" (ro)"), nil
}

// Seals returns the F_SEAL_* seals of the segment's file; a file that does
// not support sealing yields an error wrapping EINVAL.
func (m *Mapped) Seals() (int, error) {
	if m.closed.Load() {
		return 0, fmt.Errorf("get seals of segment %q: %w", m.name, os.ErrClosed)
	}
	s, err := sys.GetSeals(int(m.file.Fd()))
	if err != nil {
		return 0, fmt.Errorf("get seals of segment %q: %w", m.name, err)
	}
	return s, nil
}

// Close unmaps the memory and closes the fd. It is idempotent: calls after
// the first return nil.
func (m *Mapped) Close() error {
	if !m.closed.CompareAndSwap(false, true) {
		return nil
	}
	m.cleanup.Stop()
	if err := m.mapping.release(); err != nil {
		return fmt.Errorf("close segment %q: %w", m.name, err)
	}
	return nil
}

// memfdName parses a /proc/self/fd link of a memfd, "/memfd:parallax-x
// (deleted)", into "x". ok is false for anything that is not a memfd.
func memfdName(link string) (name string, ok bool) {
	rest, ok := strings.CutPrefix(link, "/memfd:")
	if !ok {
		return "", false
	}
	rest = strings.TrimSuffix(rest, " (deleted)")
	return strings.TrimPrefix(rest, memfdPrefix), true
}
