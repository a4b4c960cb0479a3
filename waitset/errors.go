package waitset

import "errors"

// Errors returned by the package, compared with errors.Is.
var (
	// ErrClosed is returned by Wait and the Add methods after Close.
	ErrClosed = errors.New("wait set closed")
	// ErrEmpty is returned by Wait on a set with nothing to wait for.
	ErrEmpty = errors.New("wait set has no sources")
	// ErrInvalidSource is returned for a nil source, a negative fd or a
	// non-positive interval.
	ErrInvalidSource = errors.New("invalid wait set source")
)
