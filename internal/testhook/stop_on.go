//go:build parallax_testhook

package testhook

import (
	"os"
	"sync"
	"sync/atomic"
	"syscall"
	"time"
)

// Enabled reports whether hooks are compiled in (build tag
// parallax_testhook).
const Enabled = true

// target is the hook this process stops at ("" for none): PARALLAX_TESTHOOK,
// read once, until Arm replaces it.
var target atomic.Pointer[string]

func init() {
	name := os.Getenv(EnvVar)
	target.Store(&name)
}

// Arm makes name the hook this process stops at from now on, replacing
// PARALLAX_TESTHOOK ("" disarms): a child that must pass a hook (a first
// loan, say) before it stops there arms it when the test tells it to.
func Arm(name string) {
	target.Store(&name)
	rearm.Lock()
	close(released)
	released = make(chan struct{})
	rearm.Unlock()
}

// released is closed (and replaced) by every Arm: a Pause waits for it.
var (
	rearm    sync.Mutex
	released = make(chan struct{})
)

// Pause is Stop that can end: when name is the armed hook it writes the
// same line to fd 3 and blocks the calling goroutine until the next [Arm]
// (of any name, "" included), then returns. A test uses it to hold a
// process at a point while it acts on it from outside, and lets it go on.
func Pause(name string) {
	rearm.Lock()
	ch := released
	rearm.Unlock()
	if t := *target.Load(); t == "" || name != t {
		return
	}
	writeHookLine(name)
	<-ch
}

// writeHookLine writes "hook <name>\n" to fd 3 if fd 3 is a pipe.
func writeHookLine(name string) {
	var st syscall.Stat_t
	if err := syscall.Fstat(hookFD, &st); err == nil && st.Mode&syscall.S_IFMT == syscall.S_IFIFO {
		// One write of a few bytes to a pipe is atomic (PIPE_BUF).
		_, _ = syscall.Write(hookFD, []byte("hook "+name+"\n"))
	}
}

// hookFD is the fd the stop line goes to.
const hookFD = 3

// Stop blocks the calling goroutine forever when name is the hook that
// PARALLAX_TESTHOOK (or the last Arm) names, after writing "hook <name>\n" to fd 3 if fd 3
// is a pipe (it is left alone otherwise: it may be any file the process
// opened). Other goroutines go on running; the parent is expected to
// SIGKILL the process once it read the line. Any other name returns at
// once.
func Stop(name string) {
	if t := *target.Load(); t == "" || name != t {
		return
	}
	writeHookLine(name)
	for {
		// Sleeping, not select{}: a process whose goroutines all block
		// on channels would die of the runtime's deadlock check.
		time.Sleep(time.Hour)
	}
}
