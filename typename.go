package parallax

import "reflect"

// TypeName returns the topic type name Parallax uses for the Go type T: its
// package path and name (such as "github.com/acme/cam.Frame"), or its
// printed form for unnamed types. Typed publishers and subscribers of the
// same T therefore agree across binaries.
func TypeName[T any]() string {
	t := reflect.TypeFor[T]()
	if t.PkgPath() != "" {
		return t.PkgPath() + "." + t.Name()
	}
	return t.String()
}
