package segment

import (
	"errors"
	"fmt"
	"os"

	"github.com/parallax-ipc/parallax"
	"github.com/parallax-ipc/parallax/hugepages"
	"github.com/parallax-ipc/parallax/internal/sys"
)

// memfdPrefix starts every memfd name, so /proc/<pid>/maps and
// /proc/<pid>/fd show which mappings and fds are Parallax segments.
const memfdPrefix = "parallax-"

// SealMask is the seals every created memfd carries and [Open] can require:
// the size can neither shrink nor grow, and the seals are final
// (F_SEAL_SHRINK | F_SEAL_GROW | F_SEAL_SEAL of <linux/fcntl.h>).
const SealMask = 0x2 | 0x4 | 0x1

// The kernel's values, checked at compile time: the index is out of range
// unless SealMask equals them.
var _ = [1]struct{}{}[SealMask^(sys.F_SEAL_SHRINK|sys.F_SEAL_GROW|sys.F_SEAL_SEAL)]

// MemfdOptions tunes [NewMemfd]. The zero value gives the defaults.
type MemfdOptions struct {
	// NoPrefault skips MAP_POPULATE. By default every page is faulted in
	// at creation, so the publish path never takes a first-touch fault.
	NoPrefault bool
}

// NewMemfd creates a memfd segment named "parallax-<name>" of size bytes:
// MFD_CLOEXEC|MFD_ALLOW_SEALING|MFD_NOEXEC_SEAL, sized, sealed with
// [SealMask], mapped read-write and shared, prefaulted unless
// opts.NoPrefault.
func NewMemfd(name string, size int, opts MemfdOptions) (*Mapped, error) {
	m, err := createMemfd(name, size, sys.PageSize(), 0, !opts.NoPrefault)
	if err != nil {
		return nil, fmt.Errorf("create memfd segment %q: %w", name, err)
	}
	m.kind = KindMemfd
	return m, nil
}

// HugepageOptions tunes [NewHugepage]. The zero value gives the defaults:
// 2 MiB pages when available, base pages otherwise.
type HugepageOptions struct {
	// Mode selects the hugepage size; zero is [hugepages.Auto] (2 MiB).
	Mode hugepages.Mode
	// Require fails with an error wrapping [parallax.ErrNotSupported]
	// instead of falling back to base pages.
	Require bool
	// NoPrefault skips MAP_POPULATE (see [MemfdOptions]). The hugepages are
	// still reserved at mmap, so a missing page is an error at creation,
	// never a SIGBUS on first touch.
	NoPrefault bool
	// Host is the sysfs tree consulted for free pages; zero is the real
	// one. Tests point it at a fake tree.
	Host hugepages.Host
}

// NewHugepage creates a memfd segment on hugetlb pages, with size rounded up
// to the hugepage size. When the host has too few free hugepages (by sysfs,
// or because mmap fails with ENOMEM) it falls back to a base-page memfd of
// size bytes and records the reason in [Mapped.FallbackReason]; with
// opts.Require it returns an error wrapping [parallax.ErrNotSupported]
// instead. It never uses MAP_NORESERVE.
func NewHugepage(name string, size int, opts HugepageOptions) (*Mapped, error) {
	if size <= 0 {
		return nil, fmt.Errorf("create hugepage segment %q of %d bytes: %w", name, size, sys.EINVAL)
	}
	d := opts.Host.Decide(opts.Mode, size)
	reason := d.Reason
	if d.UseHuge {
		flags, err := sys.HugeFlag(d.PageSize)
		if err != nil {
			return nil, fmt.Errorf("create hugepage segment %q: %w", name, err)
		}
		m, err := createMemfd(name, sys.RoundUp(size, d.PageSize), d.PageSize, flags, !opts.NoPrefault)
		switch {
		case err == nil:
			m.kind = KindHugepage
			return m, nil
		case errors.Is(err, sys.ENOMEM), errors.Is(err, sys.ENODEV):
			// ENOMEM: the pool emptied between Decide and mmap (the
			// reservation happens at mmap). ENODEV: the kernel has no
			// hugetlb support for this size.
			reason = fmt.Sprintf("map %d bytes on %d KiB hugepages: %v (see %s/free_hugepages); using %d KiB pages",
				sys.RoundUp(size, d.PageSize), d.PageSize>>10, err, opts.Host.Dir(d.PageSize), sys.PageSize()>>10)
			if opts.Require {
				return nil, fmt.Errorf("create hugepage segment %q: %w: %w", name, parallax.ErrNotSupported, err)
			}
		default:
			return nil, fmt.Errorf("create hugepage segment %q: %w", name, err)
		}
	} else if opts.Require {
		return nil, fmt.Errorf("create hugepage segment %q: %s: %w", name, reason, parallax.ErrNotSupported)
	}
	m, err := NewMemfd(name, size, MemfdOptions{NoPrefault: opts.NoPrefault})
	if err != nil {
		return nil, err
	}
	m.fallback = reason
	return m, nil
}

// NewMemfdFile creates a memfd named "parallax-<name>" of size bytes as
// [NewMemfd] does (same flags, sized, sealed with [SealMask]) but maps
// nothing: the caller writes what the memory must start with through the
// file (pwrite, [os.File.WriteAt]; every byte reads as zero until then)
// and owns the returned file. It spares a creator that only lays out a
// header the mmap and the munmap (whose TLB shootdown is costly in a VM)
// of a mapping it never uses again.
func NewMemfdFile(name string, size int) (*os.File, error) {
	f, err := createMemfdFile(name, size, 0)
	if err != nil {
		return nil, fmt.Errorf("create memfd %q: %w", name, err)
	}
	return f, nil
}

// createMemfdFile creates, sizes and seals a memfd. size must already be a
// multiple of the page size for hugetlb memfds.
func createMemfdFile(name string, size, hugeFlags int) (_ *os.File, err error) {
	if size <= 0 {
		return nil, fmt.Errorf("size %d: %w", size, sys.EINVAL)
	}
	full := memfdPrefix + name
	flags := sys.MFD_CLOEXEC | sys.MFD_ALLOW_SEALING | hugeFlags
	fd, err := sys.MemfdCreate(full, flags|sys.MFD_NOEXEC_SEAL)
	if errors.Is(err, sys.EINVAL) {
		// Kernels before 6.3 do not know MFD_NOEXEC_SEAL.
		fd, err = sys.MemfdCreate(full, flags)
	}
	if err != nil {
		return nil, err
	}
	f := os.NewFile(uintptr(fd), "/memfd:"+full)
	defer func() {
		if err != nil {
			f.Close()
		}
	}()
	if err := sys.Ftruncate(fd, int64(size)); err != nil {
		return nil, err
	}
	if err := sys.AddSeals(fd, SealMask); err != nil {
		return nil, err
	}
	return f, nil
}

// createMemfd creates, sizes, seals and maps a memfd. size must already be
// a multiple of pageSize for hugetlb memfds.
func createMemfd(name string, size, pageSize, hugeFlags int, populate bool) (_ *Mapped, err error) {
	f, err := createMemfdFile(name, size, hugeFlags)
	if err != nil {
		return nil, err
	}
	m, err := mapFD(f, int64(size), pageSize, false, populate)
	if err != nil {
		f.Close()
		return nil, err
	}
	m.name = name
	return m, nil
}
