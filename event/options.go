package event

import (
	"fmt"
	"time"

	"github.com/parallax-ipc/parallax"
	"github.com/parallax-ipc/parallax/internal/wire"
)

// Options configure a [Notifier] or a [Listener]. The zero value is a valid
// default: the router of $PARALLAX_DOMAIN, 256 distinct ids queued per
// listener connection, a 1 s block timeout.
type Options struct {
	// Domain and Socket select the router ("" = defaults).
	Domain, Socket string
	// Capacity is, for a listener, how many distinct ids may wait unread
	// per notifier (its connection's ring; rounded up to a power of two;
	// 0 means 256). A notifier finding a listener's ring full of other
	// ids waits for room up to BlockTimeout: ids are never dropped.
	Capacity int
	// BlockTimeout bounds a notifier's wait for a full listener (0 means
	// 1 s); then Signal fails with an error wrapping parallax.ErrTimeout.
	BlockTimeout time.Duration
	// Spin is how long a listener polls before it sleeps on the futex
	// (zero: ringbuf.DefaultSpin; negative: no spin, it sleeps at once);
	// BusyPoll never sleeps.
	Spin     time.Duration
	BusyPoll bool
}

func (o *Options) check(what, service string) error {
	if err := wire.ValidateTopic(service); err != nil {
		return fmt.Errorf("event %s: service: %w", what, err)
	}
	if o.Capacity == 0 {
		o.Capacity = 256
	}
	if o.BlockTimeout == 0 {
		o.BlockTimeout = time.Second
	}
	if o.Capacity < 0 || o.Capacity > 1<<16 || o.BlockTimeout < 0 {
		return fmt.Errorf("event %s of %q: capacity %d (limit %d) or block timeout %v out of range: %w",
			what, service, o.Capacity, 1<<16, o.BlockTimeout, parallax.ErrInvalidArgument)
	}
	return nil
}
