package shm_test

import (
	"os/exec"
	"syscall"
)

// dieWithParent makes the kernel kill the child when the parent dies (for
// example killed by the test timeout), so a child blocked on a futex never
// outlives the test.
func dieWithParent(cmd *exec.Cmd) {
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
}
