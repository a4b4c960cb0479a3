package hugepages

import (
	"fmt"
	"os"
	"path/filepath"
)

// Mode selects whether a segment uses hugepages. The zero value is [Auto].
type Mode uint8

const (
	// Auto uses 2 MiB pages when enough are available, else base pages.
	Auto Mode = iota
	// Never always uses base pages.
	Never
	// Huge2M asks for 2 MiB pages.
	Huge2M
	// Huge1G asks for 1 GiB pages; the pool is empty unless configured.
	Huge1G
)

var modeNames = [...]string{Auto: "auto", Never: "never", Huge2M: "2M", Huge1G: "1G"}

// String returns "auto", "never", "2M" or "1G".
func (m Mode) String() string {
	if int(m) < len(modeNames) {
		return modeNames[m]
	}
	return fmt.Sprintf("Mode(%d)", m)
}

// MarshalText implements encoding.TextMarshaler (for TOML configuration).
func (m Mode) MarshalText() ([]byte, error) {
	if int(m) >= len(modeNames) {
		return nil, fmt.Errorf("marshal hugepage mode %d: unknown mode", m)
	}
	return []byte(m.String()), nil
}

// UnmarshalText implements encoding.TextUnmarshaler; it accepts the names
// String returns.
func (m *Mode) UnmarshalText(b []byte) error {
	for i, n := range modeNames {
		if n == string(b) {
			*m = Mode(i)
			return nil
		}
	}
	return fmt.Errorf("parse hugepage mode %q: want auto, never, 2M or 1G", b)
}

// PageSize returns the hugepage size the mode asks for, or 0 for Never.
func (m Mode) PageSize() int {
	switch m {
	case Auto, Huge2M:
		return Size2M
	case Huge1G:
		return Size1G
	}
	return 0
}

// Decision is the outcome of [Decide].
type Decision struct {
	// PageSize is the page size to use: a hugepage size when UseHuge,
	// otherwise the base page size.
	PageSize int
	// UseHuge reports whether to map hugetlb pages.
	UseHuge bool
	// Reason says why hugepages are not used; empty when UseHuge.
	Reason string
}

// Decide picks the page size for a segment of size bytes under mode. With
// [Never] it picks base pages; otherwise it picks the mode's hugepage size
// when the pool has enough available pages (see [Info.Available]) for size
// rounded up to that page size, and base pages with a Reason otherwise. The
// Reason names the sysfs file to inspect. Decide never fails: an unreadable
// pool is a reason to use base pages.
func (h Host) Decide(mode Mode, size int) Decision {
	base := Decision{PageSize: os.Getpagesize()}
	ps := mode.PageSize()
	if ps == 0 {
		base.Reason = "hugepages disabled (mode never)"
		return base
	}
	info, err := h.Stat(ps)
	if err != nil {
		base.Reason = fmt.Sprintf("no %s hugepage pool: %v; using %d KiB pages", human(ps), err, base.PageSize>>10)
		return base
	}
	need := (size + ps - 1) / ps
	if avail := info.Available(); avail < need {
		base.Reason = fmt.Sprintf("need %d free %s hugepages for %d bytes, %d available (see %s); using %d KiB pages",
			need, human(ps), size, avail, filepath.Join(h.Dir(ps), "free_hugepages"), base.PageSize>>10)
		return base
	}
	return Decision{PageSize: ps, UseHuge: true}
}

// Decide decides against the host's real pools (see [Host.Decide]).
func Decide(mode Mode, size int) Decision { return Host{}.Decide(mode, size) }

func human(n int) string {
	switch {
	case n >= 1<<30 && n%(1<<30) == 0:
		return fmt.Sprintf("%d GiB", n>>30)
	case n >= 1<<20 && n%(1<<20) == 0:
		return fmt.Sprintf("%d MiB", n>>20)
	}
	return fmt.Sprintf("%d KiB", n>>10)
}
