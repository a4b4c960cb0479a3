// Package testhook stops a process at a named point so that a test can
// SIGKILL it exactly there (the kill windows of
// docs/design/memory-ownership.md §4.2).
//
// [Stop] compiles to nothing unless the binary is built with the build tag
// parallax_testhook: it is an empty function that the compiler inlines
// away, so hooks cost nothing in production code. With the tag, and with
// the environment variable PARALLAX_TESTHOOK set to a hook's name, the
// process that reaches that hook writes "hook <name>\n" to fd 3 (when fd 3
// is a pipe: the parent passes one as the first of exec.Cmd.ExtraFiles)
// and blocks forever; the parent reads the line and kills the process by
// PID. Every other hook, and every hook when the variable is unset, does
// nothing.
//
// Hook names are dotted, lowercase and stable: tests name them. The
// owned-model windows are loan.popped, publish.mid, history.mid,
// discard.won, take.popped, release.pre, release.post, drain.mid,
// close.held and grow.reply; the [Pause] points are resume.snapshot,
// resume.replied (the restarted router took the process back, it still
// sends on the old connection) and control.eof (the control connection's
// reader saw the router hang up).
package testhook

// EnvVar names the hook a process stops at.
const EnvVar = "PARALLAX_TESTHOOK"
