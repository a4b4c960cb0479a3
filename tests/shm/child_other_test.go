//go:build !linux

package shm_test

import "os/exec"

// dieWithParent is a no-op off Linux, where the segments these tests need
// are not supported anyway.
func dieWithParent(*exec.Cmd) {}
