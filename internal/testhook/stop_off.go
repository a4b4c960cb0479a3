//go:build !parallax_testhook

package testhook

// Enabled reports whether hooks are compiled in (build tag
// parallax_testhook).
const Enabled = false

// Stop does nothing: this binary was built without the
// parallax_testhook tag. The call inlines to nothing.
func Stop(string) {}

// Arm does nothing: this binary was built without the parallax_testhook
// tag, so no hook ever stops.
func Arm(string) {}

// Pause does nothing: this binary was built without the parallax_testhook
// tag. The call inlines to nothing.
func Pause(string) {}
