package procmon

import (
	"sync"
	"sync/atomic"
)

// closeOnce runs a close function once and remembers that it did. The zero
// value is ready to use; it must not be copied.
type closeOnce struct {
	once   sync.Once
	closed atomic.Bool
}

// do marks the owner closed and runs fn the first time it is called.
func (c *closeOnce) do(fn func()) {
	c.once.Do(func() {
		c.closed.Store(true)
		fn()
	})
}

// done reports whether do has been called.
func (c *closeOnce) done() bool { return c.closed.Load() }
