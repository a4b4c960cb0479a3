// Package sys is the only Parallax package that imports golang.org/x/sys/unix.
// It wraps the system calls Parallax needs — memfd creation and sealing,
// mmap/munmap with page-rounded lengths, futex wait/wake on shared memory,
// SCM_RIGHTS fd passing, peer credentials, SO_PEERPIDFD and pidfd helpers —
// as thin functions without policy. Kernel errors are wrapped so callers
// test them with errors.Is (for example errors.Is(err, unix.ENOMEM) becomes
// errors.Is(err, sys.ENOMEM)).
package sys
