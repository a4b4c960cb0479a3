package rpc

import (
	"errors"
	"fmt"

	"github.com/parallax-ipc/parallax"
)

// Errors of this package.
var (
	// ErrInFlight reports a call beyond [Options.MaxInFlight]; it wraps
	// parallax.ErrLimit.
	ErrInFlight = fmt.Errorf("too many calls in flight: %w", parallax.ErrLimit)
	// ErrServerGone reports that the server a call went to died or closed
	// before it ended the call's responses; the error that wraps it names
	// the server's connection and why it ended.
	ErrServerGone = errors.New("server gone")
	// ErrClientGone reports a response to a client that is gone.
	ErrClientGone = errors.New("client gone")
	// ErrNoServer reports a call while no server of the service is
	// connected (see [Client.WaitForServers]).
	ErrNoServer = errors.New("no server")
	// ErrEnded reports Next on a stream whose last response came already,
	// or a Send on a request already answered with end.
	ErrEnded = errors.New("stream ended")
	// ErrClosed reports use after Close.
	ErrClosed = errors.New("rpc endpoint closed")
)
