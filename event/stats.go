package event

import "github.com/parallax-ipc/parallax/publisher"

// Stats returns the memory counters of the notifier's own data segment.
// A notifier never loans, so every count but Segments and Chunks stays 0
// (a non-zero InUse, Outstanding or BadReturns means a leak or a listener
// that returned refs it was never given).
func (n *Notifier) Stats() publisher.MemoryStats { return n.pub.Stats().Memory }
