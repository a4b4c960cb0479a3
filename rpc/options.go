package rpc

import (
	"fmt"
	"time"

	"github.com/parallax-ipc/parallax"
	"github.com/parallax-ipc/parallax/internal/wire"
)

// Type describes a payload type; the zero value is variable-size bytes.
// Clients and servers of a service must agree on both types, or the later
// one is refused with parallax.ErrIncompatibleType.
type Type struct {
	Name        string
	Size, Align uint32
}

// Options configure a [Client] or a [Server]. The zero value is a valid
// default: the router of $PARALLAX_DOMAIN, untyped payloads of up to 4 KiB.
type Options struct {
	// Domain and Socket select the router ("" = defaults).
	Domain, Socket string
	// Request and Response are the payload types of the service.
	Request, Response Type
	// MaxRequest and MaxResponse are the largest untyped payloads (the
	// chunk size of the sender's data segment); 0 means the router's
	// default (4 KiB). Typed payloads use the type's size.
	MaxRequest, MaxResponse int
	// MaxInFlight is, for a client, the calls pending at once (0 means
	// [DefaultMaxInFlight]; one more fails with [ErrInFlight]); for a
	// server, the requests it holds at once per client.
	MaxInFlight int
	// Spin is how long a wait polls before it yields the processor once
	// and sleeps on the futex (0: the subscriber default); BusyPoll never
	// sleeps.
	Spin     time.Duration
	BusyPoll bool
	// ExpectedClients sizes a server's response segment (0 means 4); the
	// router grows it as clients connect.
	ExpectedClients int
}

// DefaultMaxInFlight is the in-flight limit of a zero
// [Options.MaxInFlight].
const DefaultMaxInFlight = 16

// parked is how many responses per pending call a client keeps while
// another call's goroutine takes from the shared response queue.
const parked = 4

func (o *Options) check(service string) error {
	if err := wire.ValidateTopic(service); err != nil {
		return fmt.Errorf("rpc: service: %w", err)
	}
	if o.MaxInFlight == 0 {
		o.MaxInFlight = DefaultMaxInFlight
	}
	if o.ExpectedClients == 0 {
		o.ExpectedClients = 4
	}
	if o.MaxInFlight < 0 || o.MaxInFlight > 1<<16 || o.MaxRequest < 0 || o.MaxResponse < 0 ||
		o.ExpectedClients < 0 || o.ExpectedClients > wire.MaxExpectedSubs {
		return fmt.Errorf("rpc %q: max in flight %d (limit %d), max request %d, max response %d or expected clients %d out of range: %w",
			service, o.MaxInFlight, 1<<16, o.MaxRequest, o.MaxResponse, o.ExpectedClients, parallax.ErrInvalidArgument)
	}
	return nil
}
