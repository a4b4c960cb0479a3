package roudi

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"syscall"

	"github.com/parallax-ipc/parallax/internal/sys"
	"github.com/parallax-ipc/parallax/internal/wire"
	"github.com/parallax-ipc/parallax/segment"
)

// File-backed data segments ([memory] backing = "file", config_backing.go).
//
// A publisher's data segment is then a file the router creates in
// memory.path, named like the memfd would be ("plx:<domain>:p<pub>.<index>"),
// O_EXCL|O_NOFOLLOW, mode 0600, and unlinks at once: the memory lives as
// long as an fd or a mapping of it, exactly like a memfd, and nothing is
// left in the directory when the router or a client dies. A restarted
// router does not need the names: in the owned model it adopts memory only
// from the fds resuming clients hand back (server_adopt.go), and it checks
// their /proc/self/fd link, "<path>/<name> (deleted)", the way it checks a
// memfd's name. Connection segments stay memfds (they are small).
//
// Files cannot be sealed: the owning publisher, which holds a read-write
// fd, can ftruncate its file; its subscribers then fault (SIGBUS) on the
// pages cut off. README "Security" lists it. Subscribers still get a
// read-only fd (O_RDONLY reopen of the router's), so they cannot write,
// truncate or reopen it for writing (the inode is 0600, the router's).

// fileBacked reports whether data segments are files.
func (s *Server) fileBacked() bool { return s.cfg.Memory.Backing == BackingFile }

// dataSegKind is the wire kind of a data segment the router creates with
// page size page.
func (s *Server) dataSegKind(page int) uint8 {
	switch {
	case s.fileBacked():
		return wire.KindFile
	case page > os.Getpagesize():
		return wire.KindHugetlb
	}
	return wire.KindMemfd
}

// newDataSeg creates a data segment: a file in memory.path when file
// backed, else a memfd (newOwnedSeg).
func (s *Server) newDataSeg(name string, size int, huge, require bool, format func(mem []byte, pageSize int) error) (*os.File, int, error) {
	if !s.fileBacked() {
		return newOwnedSeg(name, size, huge, require, format)
	}
	return newFileSeg(s.cfg.Memory.Path, name, size, format)
}

// dataSegLink is the /proc/self/fd link text of the data segment called
// name: what adoption expects of a handed-back fd.
func (s *Server) dataSegLink(name string) string {
	if s.fileBacked() {
		return filepath.Join(s.cfg.Memory.Path, name) + " (deleted)"
	}
	return "/memfd:parallax-" + name + " (deleted)"
}

// newFileSeg creates dir/name (0600, exclusive), unlinks it, sizes it,
// maps it once for format and returns a read-write fd and the page size.
// A file of that name left by a router that died between create and
// unlink is replaced if this uid owns it.
func newFileSeg(dir, name string, size int, format func(mem []byte, pageSize int) error) (_ *os.File, _ int, err error) {
	path := filepath.Join(dir, name)
	const flags = os.O_RDWR | os.O_CREATE | os.O_EXCL | syscall.O_NOFOLLOW
	f, err := os.OpenFile(path, flags, 0o600)
	if errors.Is(err, os.ErrExist) && ownStale(path) {
		if err = os.Remove(path); err == nil {
			f, err = os.OpenFile(path, flags, 0o600)
		}
	}
	if err != nil {
		return nil, 0, fmt.Errorf("create file segment: %w", err)
	}
	rmErr := os.Remove(path)
	defer func() {
		if err != nil {
			f.Close()
		}
	}()
	if rmErr != nil {
		return nil, 0, fmt.Errorf("unlink file segment: %w", rmErr)
	}
	if err := f.Chmod(0o600); err != nil { // whatever the umask did
		return nil, 0, fmt.Errorf("fchmod %s 0600: %w", path, err)
	}
	if err := f.Truncate(int64(size)); err != nil {
		return nil, 0, fmt.Errorf("size file segment %s: %w", path, err)
	}
	dup, err := sys.DupFile(f)
	if err != nil {
		return nil, 0, err
	}
	m, err := segment.Open(dup, segment.OpenOptions{ExpectedSize: int64(size)})
	if err != nil {
		dup.Close()
		return nil, 0, fmt.Errorf("map file segment %s: %w", path, err)
	}
	defer func() { err = errors.Join(err, m.Close()) }()
	if err := format(m.Bytes(), m.PageSize()); err != nil {
		return nil, 0, fmt.Errorf("format %s: %w", path, err)
	}
	return f, m.PageSize(), nil
}

// ownStale reports whether path is a regular file of this uid: a segment
// file a dead router of this domain did not get to unlink.
func ownStale(path string) bool {
	fi, err := os.Lstat(path)
	if err != nil || !fi.Mode().IsRegular() {
		return false
	}
	st, ok := fi.Sys().(*syscall.Stat_t)
	return ok && int(st.Uid) == os.Geteuid()
}
