package testutil

import (
	"errors"
	"io"
	"os"
	"path/filepath"
	"syscall"
	"testing"
)

// WorldExecutableCopy copies the running test binary into a fresh
// directory that any user may enter (go test builds into a 0700
// directory), for children started under another uid. The directory goes
// away with the test.
func WorldExecutableCopy(t testing.TB) string {
	t.Helper()
	self, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	dir, err := os.MkdirTemp("", "parallax-exe-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	if err := os.Chmod(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	dst := filepath.Join(dir, filepath.Base(self))
	src, err := os.Open(self)
	if err != nil {
		t.Fatal(err)
	}
	defer src.Close()
	// No fork while the copy is open for writing: a child that another
	// test forks meanwhile would hold the descriptor until its own exec,
	// and exec of dst would fail with ETXTBSY (go.dev/issue/22315). os/exec
	// forks under ForkLock's read lock.
	syscall.ForkLock.Lock()
	out, err := os.OpenFile(dst, os.O_CREATE|os.O_WRONLY|os.O_EXCL, 0o755)
	if err == nil {
		_, err = io.Copy(out, src)
		err = errors.Join(err, out.Close())
	}
	syscall.ForkLock.Unlock()
	if err != nil {
		t.Fatalf("copy test binary: %v", err)
	}
	return dst
}
