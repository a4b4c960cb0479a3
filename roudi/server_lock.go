package roudi

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"

	"github.com/parallax-ipc/parallax/discovery"
	"github.com/parallax-ipc/parallax/internal/sys"
)

// One router per domain.
//
// A router holds an exclusive flock on <runtime_dir>/<domain>.lock
// (Config.LockPath) from New to Close. The path depends on the domain name
// only, not on the socket: a second router of the domain, whatever its
// -socket, finds the lock held and New fails with an error wrapping
// discovery.ErrRouterRunning that names the live router's pid and socket,
// which the holder wrote into the file (parallax-roudi exits with code 3).
// The kernel releases a flock when its holder dies, however it dies, so a
// lock we could take proves that the previous router of the domain is
// dead: only then does New look for its segments to adopt
// (server_resume.go). Routers of different domain names never collide.
//
// The holder removes the file when it closes, while it still holds the
// lock. A router that opened the old file and locked it after that removal
// holds a lock on a file nobody else can find; it notices (the path no
// longer names the inode it locked) and tries again.

// domainLock is a held domain lock. Use lockDomain; Close is idempotent.
type domainLock struct {
	f    *os.File
	path string
}

// lockAttempts bounds the retries when the lock file is being replaced.
const lockAttempts = 16

// lockDomain takes cfg's domain lock for a router serving socket. The
// lock's directory is created with dirMode when it does not exist.
func lockDomain(cfg *Config, socket string, dirMode os.FileMode) (*domainLock, error) {
	path := cfg.LockPath()
	dir := filepath.Dir(path)
	if _, err := os.Stat(dir); errors.Is(err, os.ErrNotExist) {
		if err := os.MkdirAll(dir, dirMode); err != nil {
			return nil, fmt.Errorf("lock domain %q: create %s: %w", cfg.Domain, dir, err)
		}
		if err := os.Chmod(dir, dirMode); err != nil {
			return nil, fmt.Errorf("lock domain %q: set mode of %s: %w", cfg.Domain, dir, err)
		}
	}
	for range lockAttempts {
		f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE, 0o600)
		if err != nil {
			return nil, fmt.Errorf("lock domain %q: %w", cfg.Domain, err)
		}
		if err := sys.TryLockFile(f); err != nil {
			f.Close()
			if errors.Is(err, sys.ErrLocked) {
				pid, sock := lockOwner(path)
				return nil, fmt.Errorf("lock domain %q: %w: the live router of the domain is pid %s, socket %s (it holds %s)",
					cfg.Domain, discovery.ErrRouterRunning, pid, sock, path)
			}
			return nil, fmt.Errorf("lock domain %q: %w", cfg.Domain, err)
		}
		if !sameFile(f, path) {
			f.Close() // removed by its previous holder after we opened it
			continue
		}
		owner := fmt.Sprintf("pid %d\nsocket %s\n", os.Getpid(), socket)
		err = f.Truncate(0)
		if err == nil {
			_, err = f.WriteAt([]byte(owner), 0)
		}
		if err != nil {
			f.Close()
			return nil, fmt.Errorf("lock domain %q: record the owner in %s: %w", cfg.Domain, path, err)
		}
		return &domainLock{f: f, path: path}, nil
	}
	return nil, fmt.Errorf("lock domain %q: %s was replaced %d times while we locked it", cfg.Domain, path, lockAttempts)
}

// lockOwner reads the pid and socket a lock holder recorded ("?" for what
// it has not written yet).
func lockOwner(path string) (pid, socket string) {
	pid, socket = "?", "?"
	b, err := os.ReadFile(path)
	if err != nil || len(b) > 4096 {
		return pid, socket
	}
	for l := range strings.SplitSeq(string(b), "\n") {
		k, v, _ := strings.Cut(l, " ")
		switch k {
		case "pid":
			if _, err := strconv.Atoi(v); err == nil {
				pid = v
			}
		case "socket":
			socket = strconv.Quote(v)
		}
	}
	return pid, socket
}

// sameFile reports whether path still names the file f has open.
func sameFile(f *os.File, path string) bool {
	a, err := f.Stat()
	if err != nil {
		return false
	}
	b, err := os.Stat(path)
	if err != nil {
		return false
	}
	sa, ok1 := a.Sys().(*syscall.Stat_t)
	sb, ok2 := b.Sys().(*syscall.Stat_t)
	return ok1 && ok2 && sa.Dev == sb.Dev && sa.Ino == sb.Ino
}

// Close removes the lock file (while still holding the lock) and releases
// the lock.
func (l *domainLock) Close() error {
	if l == nil || l.f == nil {
		return nil
	}
	var err error
	if sameFile(l.f, l.path) {
		if rerr := os.Remove(l.path); rerr != nil && !errors.Is(rerr, os.ErrNotExist) {
			err = fmt.Errorf("remove domain lock: %w", rerr)
		}
	}
	err = errors.Join(err, l.f.Close())
	l.f = nil
	return err
}
