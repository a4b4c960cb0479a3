//go:build parallax_testhook

package testhook

import (
	"os"
	"syscall"
	"time"
)

// Enabled reports whether hooks are compiled in (build tag
// parallax_testhook).
const Enabled = true

// target is the hook this process stops at ("" for none); read once.
var target = os.Getenv(EnvVar)

// hookFD is the fd the stop line goes to.
const hookFD = 3

// Stop blocks the calling goroutine forever when name is the hook that
// PARALLAX_TESTHOOK names, after writing "hook <name>\n" to fd 3 if fd 3
// is a pipe (it is left alone otherwise: it may be any file the process
// opened). Other goroutines go on running; the parent is expected to
// SIGKILL the process once it read the line. Any other name returns at
// once.
func Stop(name string) {
	if target == "" || name != target {
		return
	}
	var st syscall.Stat_t
	if err := syscall.Fstat(hookFD, &st); err == nil && st.Mode&syscall.S_IFMT == syscall.S_IFIFO {
		// One write of a few bytes to a pipe is atomic (PIPE_BUF).
		_, _ = syscall.Write(hookFD, []byte("hook "+name+"\n"))
	}
	for {
		// Sleeping, not select{}: a process whose goroutines all block
		// on channels would die of the runtime's deadlock check.
		time.Sleep(time.Hour)
	}
}
