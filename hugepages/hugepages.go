package hugepages

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"

	"github.com/parallax-ipc/parallax"
)

// DefaultRoot is the sysfs directory holding one subdirectory per hugepage
// size.
const DefaultRoot = "/sys/kernel/mm/hugepages"

// Common hugepage sizes on x86-64.
const (
	Size2M = 2 << 20
	Size1G = 1 << 30
)

// Info describes one hugepage pool, in pages of PageSize bytes.
type Info struct {
	// PageSize is the hugepage size in bytes.
	PageSize int
	// Total is nr_hugepages: the persistent pool size.
	Total int
	// Free is free_hugepages: pool pages not faulted into any mapping. It
	// includes Reserved pages.
	Free int
	// Reserved is resv_hugepages: free pages already promised to mappings.
	Reserved int
	// Surplus is surplus_hugepages: pages allocated beyond Total through
	// overcommit.
	Surplus int
	// Overcommit is nr_overcommit_hugepages: the most surplus pages the
	// kernel may allocate on demand.
	Overcommit int
}

// Available returns how many pages a new mapping can still reserve: the free
// pages not already promised, plus the surplus pages overcommit still
// allows.
func (i Info) Available() int {
	n := i.Free - i.Reserved
	if extra := i.Overcommit - i.Surplus; extra > 0 {
		n += extra
	}
	return max(n, 0)
}

// Host reads and changes the hugepage pools described by a sysfs tree.
//
// The zero value uses [DefaultRoot]. A Host is a plain value: it may be
// copied and is safe for concurrent use (each call reads sysfs afresh).
type Host struct {
	// Root is the directory holding hugepages-<size>kB subdirectories;
	// empty means DefaultRoot.
	Root string
}

func (h Host) root() string {
	if h.Root == "" {
		return DefaultRoot
	}
	return h.Root
}

// Dir returns the sysfs directory of the pool of pageSize-byte pages.
func (h Host) Dir(pageSize int) string {
	return filepath.Join(h.root(), fmt.Sprintf("hugepages-%dkB", pageSize>>10))
}

// Sizes returns the hugepage sizes in bytes the host offers, ascending. A
// host without hugetlb support yields an error wrapping
// [parallax.ErrNotSupported].
func (h Host) Sizes() ([]int, error) {
	ents, err := os.ReadDir(h.root())
	if errors.Is(err, fs.ErrNotExist) {
		return nil, fmt.Errorf("list hugepage sizes: %w (%w)", parallax.ErrNotSupported, err)
	}
	if err != nil {
		return nil, fmt.Errorf("list hugepage sizes: %w", err)
	}
	var sizes []int
	for _, e := range ents {
		kb, ok := strings.CutPrefix(e.Name(), "hugepages-")
		if !ok {
			continue
		}
		kb, ok = strings.CutSuffix(kb, "kB")
		if !ok {
			continue
		}
		n, err := strconv.Atoi(kb)
		if err != nil || n <= 0 {
			continue
		}
		sizes = append(sizes, n<<10)
	}
	slices.Sort(sizes)
	return sizes, nil
}

// Stat reads the pool of pageSize-byte pages. A size the host does not offer
// yields an error wrapping [parallax.ErrNotSupported].
func (h Host) Stat(pageSize int) (Info, error) {
	dir := h.Dir(pageSize)
	if _, err := os.Stat(dir); err != nil {
		if errors.Is(err, fs.ErrNotExist) {
			return Info{}, fmt.Errorf("read hugepage pool %s: %w (%w)", dir, parallax.ErrNotSupported, err)
		}
		return Info{}, fmt.Errorf("read hugepage pool: %w", err)
	}
	info := Info{PageSize: pageSize}
	for _, f := range []struct {
		name string
		dst  *int
	}{
		{"nr_hugepages", &info.Total},
		{"free_hugepages", &info.Free},
		{"resv_hugepages", &info.Reserved},
		{"surplus_hugepages", &info.Surplus},
		{"nr_overcommit_hugepages", &info.Overcommit},
	} {
		n, err := readInt(filepath.Join(dir, f.name))
		if err != nil {
			return Info{}, fmt.Errorf("read hugepage pool: %w", err)
		}
		*f.dst = n
	}
	return info, nil
}

func readInt(path string) (int, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return 0, err
	}
	n, err := strconv.Atoi(strings.TrimSpace(string(b)))
	if err != nil {
		return 0, fmt.Errorf("parse %s: %w", path, err)
	}
	return n, nil
}

// Sizes returns the hugepage sizes the host offers (see [Host.Sizes]).
func Sizes() ([]int, error) { return Host{}.Sizes() }

// Stat reads the host's pool of pageSize-byte pages (see [Host.Stat]).
func Stat(pageSize int) (Info, error) { return Host{}.Stat(pageSize) }
