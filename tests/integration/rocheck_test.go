//go:build integration

package integration

import (
	"errors"
	"fmt"
	"os"
	"reflect"
	"syscall"
)

// tryWrite tries three ways to write the memory b lives in, from a process
// that received it read-only: reopen the file's fd through /proc/self/fd
// with O_RDWR, mprotect its page PROT_READ|PROT_WRITE, pwrite through the
// fd. It returns each attempt's error (nil: the write way was open).
func tryWrite(b []byte) (reopen, prot, pw error) {
	m, err := mappingOf(b)
	if err != nil {
		return err, err, err
	}
	fd, err := fdOfInode(m.Inode)
	if err != nil {
		return err, err, err
	}
	path := fmt.Sprintf("/proc/self/fd/%d", fd)
	if f, err := os.OpenFile(path, os.O_RDWR, 0); err == nil {
		f.Close() // opened: the write way was open (reopen stays nil)
	} else {
		reopen = err
	}
	page := uintptr(os.Getpagesize())
	addr := reflect.ValueOf(b).Pointer() &^ (page - 1)
	if _, _, e := syscall.Syscall(syscall.SYS_MPROTECT, addr, page, syscall.PROT_READ|syscall.PROT_WRITE); e != 0 {
		prot = e
	} else {
		// Opened for writing: put it back before anything writes there.
		_, _, _ = syscall.Syscall(syscall.SYS_MPROTECT, addr, page, syscall.PROT_READ)
	}
	if _, err := syscall.Pwrite(fd, []byte{0}, int64(m.FileOff)); err != nil {
		pw = err
	}
	return reopen, prot, pw
}

// fdOfInode finds an open fd of this process on the file with inode ino.
func fdOfInode(ino uint64) (int, error) {
	ents, err := os.ReadDir("/proc/self/fd")
	if err != nil {
		return -1, err
	}
	for _, e := range ents {
		var fd int
		if _, err := fmt.Sscan(e.Name(), &fd); err != nil {
			continue
		}
		var st syscall.Stat_t
		if syscall.Fstat(fd, &st) == nil && st.Ino == ino {
			return fd, nil
		}
	}
	return -1, fmt.Errorf("no open fd on inode %d", ino)
}

// errName is "ok" for nil, else the errno's name or the error text without
// spaces.
func errName(err error) string {
	var e syscall.Errno
	switch {
	case err == nil:
		return "ok"
	case errors.As(err, &e):
		switch e {
		case syscall.EACCES:
			return "EACCES"
		case syscall.EPERM:
			return "EPERM"
		case syscall.EBADF:
			return "EBADF"
		}
		return fmt.Sprintf("errno%d", int(e))
	}
	return "error"
}
