//go:build !parallax_countatomics

package atomiccount

// Enabled reports whether this binary counts (built with the
// parallax_countatomics tag).
const Enabled = false

// Add does nothing: this binary was built without the
// parallax_countatomics tag.
func Add(bool) {}

// Snapshot returns zeros: this binary was built without the
// parallax_countatomics tag.
func Snapshot() Counts { return Counts{} }
