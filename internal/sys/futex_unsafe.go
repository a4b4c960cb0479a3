//go:build linux

// This file implements futex wait and wake on 32-bit words that live in
// shared memory (MAP_SHARED memfd mappings).
//
// Invariants:
//   - addr points into a mapping that stays mapped for the duration of the
//     call; the caller (ringbuf.Notifier) owns that guarantee.
//   - addr is 4-byte aligned (callers place futex words at 8-byte aligned
//     offsets).
//   - The futex is not FUTEX_PRIVATE: the key is (inode, offset), so a waiter
//     in one process is woken by a waker in another.
//
// The unsafe conversion is the uintptr(unsafe.Pointer(addr)) written inline
// in the Syscall6 argument list, the form go vet accepts.

package sys

import (
	"time"
	"unsafe"

	"golang.org/x/sys/unix"
)

// futex operations; x/sys/unix does not export them. No FUTEX_PRIVATE_FLAG:
// Parallax futexes are shared between processes.
const (
	futexWait = 0
	futexWake = 1
)

// FutexWait blocks while *addr == val, until woken by [FutexWake], until
// timeout elapses (timeout <= 0 means no timeout) or until a signal
// interrupts the call. It returns nil when woken, EAGAIN when *addr != val
// on entry, ETIMEDOUT on timeout and EINTR when interrupted; callers loop and
// re-check their condition in every case.
func FutexWait(addr *uint32, val uint32, timeout time.Duration) error {
	var tsp *unix.Timespec
	var ts unix.Timespec
	if timeout > 0 {
		ts = unix.NsecToTimespec(int64(timeout))
		tsp = &ts
	}
	_, _, e := unix.Syscall6(unix.SYS_FUTEX, uintptr(unsafe.Pointer(addr)), futexWait, uintptr(val), uintptr(unsafe.Pointer(tsp)), 0, 0)
	if e != 0 {
		return errnoErr(e)
	}
	return nil
}

// FutexWake wakes up to n waiters blocked in [FutexWait] on addr and returns
// how many it woke.
func FutexWake(addr *uint32, n int) (int, error) {
	r, _, e := unix.Syscall6(unix.SYS_FUTEX, uintptr(unsafe.Pointer(addr)), futexWake, uintptr(n), 0, 0, 0)
	if e != 0 {
		return 0, errnoErr(e)
	}
	return int(r), nil
}

// futexWaitv mirrors the kernel's struct futex_waitv (Linux 5.16+).
type futexWaitv struct {
	val      uint64
	uaddr    uint64
	flags    uint32
	reserved uint32
}

// futex2SizeU32 is FUTEX2_SIZE_U32: a 32-bit futex word, shared (no
// FUTEX2_PRIVATE), as FutexWait's.
const futex2SizeU32 = 0x02

// MaxWaitv is the most words FutexWaitv accepts (FUTEX_WAITV_MAX).
const MaxWaitv = 128

// FutexWaitv blocks until one of the words changes from its value in vals
// and is woken (FutexWake on any of them), or until timeout (<= 0 means
// none). It returns the index of the woken word, or an error: EAGAIN when a
// word already differed on entry, ETIMEDOUT, EINTR; callers loop and
// re-check their condition. On kernels without futex_waitv the error wraps
// ENOSYS.
func FutexWaitv(addrs []*uint32, vals []uint32, timeout time.Duration) (int, error) {
	n := len(addrs)
	if n == 0 || n != len(vals) || n > MaxWaitv {
		return -1, EINVAL
	}
	var ws [MaxWaitv]futexWaitv
	for i, a := range addrs {
		ws[i] = futexWaitv{val: uint64(vals[i]), uaddr: uint64(uintptr(unsafe.Pointer(a))), flags: futex2SizeU32}
	}
	var tsp *unix.Timespec
	var ts unix.Timespec
	if timeout > 0 {
		// futex_waitv takes an absolute CLOCK_MONOTONIC deadline. The
		// runtime's nanotime reads that clock through the vDSO;
		// unix.ClockGettime is a real system call, one more per sleep
		// (about a tenth of a grid subscriber's CPU time on a VM).
		ts = unix.NsecToTimespec(nanotime() + int64(timeout))
		tsp = &ts
	}
	r, _, e := unix.Syscall6(unix.SYS_FUTEX_WAITV, uintptr(unsafe.Pointer(&ws[0])), uintptr(n), 0, uintptr(unsafe.Pointer(tsp)), uintptr(unix.CLOCK_MONOTONIC), 0)
	if e != 0 {
		return -1, errnoErr(e)
	}
	return int(r), nil
}
