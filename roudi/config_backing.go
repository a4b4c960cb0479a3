package roudi

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"

	"github.com/parallax-ipc/parallax/segment"
)

// Backing names where the owned model's publisher data segments live
// ([memory] backing).
type Backing string

// Backings.
const (
	// BackingMemfd creates data segments as sealed memfds (the default;
	// an empty Backing means the same).
	BackingMemfd Backing = "memfd"
	// BackingFile creates them as files in [Memory.Path], mapped shared: a
	// tmpfs or DAX mount, for example. The router creates each file 0600
	// and unlinks it at once (server_filebacking.go). Files cannot be
	// sealed: see README "Security" for what that changes.
	BackingFile Backing = "file"
)

// validateBacking checks memory.backing and memory.path. For file backing
// the directory must exist, must not be writable by others unless sticky
// (others could otherwise rename or remove files while the router creates
// them), and must hold files that can be mapped shared with base pages:
// a probe file is created, mapped and removed.
func (c *Config) validateBacking(bad func(key, format string, args ...any)) {
	m := c.Memory
	switch m.Backing {
	case "", BackingMemfd:
		if m.Path != "" {
			bad("memory.path", `is only used with memory.backing = "file", got %q with backing %q`, m.Path, m.Backing)
		}
		return
	case BackingFile:
	default:
		bad("memory.backing", `must be "memfd" or "file", got %q`, m.Backing)
		return
	}
	if c.Memory.Model != ModelOwned {
		bad("memory.backing", `"file" needs memory.model = "owned", got %q`, c.Memory.Model)
		return
	}
	if c.Publishers.Hugepages == HugepagesAlways {
		bad("publishers.hugepages", `"always" cannot be met with memory.backing = "file" (the mount decides the pages): use "auto" or "never"`)
	}
	if m.Path == "" {
		bad("memory.path", `must name a directory when memory.backing = "file"`)
		return
	}
	if !filepath.IsAbs(m.Path) {
		bad("memory.path", "must be an absolute path, got %q", m.Path)
		return
	}
	if err := checkBackingDir(m.Path); err != nil {
		bad("memory.path", "%v", err)
	}
}

// errBackingDir wraps the problems of a file-backing directory.
var errBackingDir = errors.New("unusable for file-backed segments")

// checkBackingDir checks that dir suits file-backed data segments.
func checkBackingDir(dir string) error {
	fi, err := os.Stat(dir)
	if err != nil {
		return fmt.Errorf("%w: %w", errBackingDir, err)
	}
	if !fi.IsDir() {
		return fmt.Errorf("%s is not a directory: %w", dir, errBackingDir)
	}
	if mode := fi.Mode(); mode.Perm()&0o002 != 0 && mode&os.ModeSticky == 0 {
		return fmt.Errorf("%s is writable by every user and not sticky (mode %v): %w", dir, mode, errBackingDir)
	}
	f, err := os.CreateTemp(dir, ".plx-probe-*")
	if err != nil {
		return fmt.Errorf("%w: cannot create a file: %w", errBackingDir, err)
	}
	_ = os.Remove(f.Name())
	page := os.Getpagesize()
	if err := f.Truncate(int64(page)); err != nil {
		f.Close()
		return fmt.Errorf("%w: cannot size a file in %s: %w", errBackingDir, dir, err)
	}
	mp, err := segment.Open(f, segment.OpenOptions{})
	if err != nil {
		f.Close()
		return fmt.Errorf("%w: cannot map a file of %s shared: %w", errBackingDir, dir, err)
	}
	defer mp.Close()
	if ps := mp.PageSize(); ps != page {
		return fmt.Errorf("%s uses %d-byte pages (hugetlbfs?), file backing needs %d-byte pages (use publishers.hugepages instead): %w", dir, ps, page, errBackingDir)
	}
	return nil
}
