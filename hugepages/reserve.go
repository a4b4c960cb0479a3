package hugepages

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"

	"github.com/parallax-ipc/parallax"
)

// Reserve sets the persistent pool of pageSize-byte pages to n pages
// (nr_hugepages) and returns the pool size the kernel actually reached,
// which may be less than n when memory is fragmented. Shrinking is allowed;
// pages still mapped become surplus and are freed when unmapped.
//
// Reserve needs privilege (root or CAP_SYS_ADMIN); otherwise the error
// wraps both [parallax.ErrPermissionDenied] and [os.ErrPermission]. A size
// the host does not offer yields an error wrapping [parallax.ErrNotSupported].
func (h Host) Reserve(pageSize, n int) (got int, err error) {
	if n < 0 {
		return 0, fmt.Errorf("reserve %d hugepages: negative count", n)
	}
	if _, err := h.Stat(pageSize); err != nil {
		return 0, fmt.Errorf("reserve %d hugepages of %d kB: %w", n, pageSize>>10, err)
	}
	path := filepath.Join(h.Dir(pageSize), "nr_hugepages")
	if err := writeSysfs(path, strconv.Itoa(n)); err != nil {
		return 0, fmt.Errorf("reserve %d hugepages of %d kB: %w", n, pageSize>>10, err)
	}
	got, err = readInt(path)
	if err != nil {
		return 0, fmt.Errorf("read back hugepage reservation: %w", err)
	}
	return got, nil
}

// Reserve resizes the host's pool (see [Host.Reserve]).
func Reserve(pageSize, n int) (int, error) { return Host{}.Reserve(pageSize, n) }

// writeSysfs writes val to an existing sysfs file (never creating it).
func writeSysfs(path, val string) error {
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_TRUNC, 0)
	if err != nil {
		return classify(err)
	}
	_, err = f.WriteString(val)
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	return classify(err)
}

// classify adds parallax.ErrPermissionDenied to permission errors so callers
// can test either sentinel.
func classify(err error) error {
	if err != nil && errors.Is(err, os.ErrPermission) {
		return fmt.Errorf("%w: %w", parallax.ErrPermissionDenied, err)
	}
	return err
}
