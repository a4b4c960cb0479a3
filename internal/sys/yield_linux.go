//go:build linux

package sys

import "golang.org/x/sys/unix"

// YieldThread gives up the processor to another runnable task of this CPU
// (sched_yield): a no-op when none is runnable, otherwise this thread runs
// again after them. A waiter calls it once between its spin and its futex
// sleep: on a machine with more busy processes than cores, the producer it
// waits for often sits on the same run queue, and yielding lets it run
// instead of paying a futex wake-up (a system call on each side and a
// context switch) for every few items.
func YieldThread() { _, _, _ = unix.Syscall(unix.SYS_SCHED_YIELD, 0, 0, 0) }
