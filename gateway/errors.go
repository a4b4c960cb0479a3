package gateway

import (
	"errors"

	"github.com/parallax-ipc/parallax/internal/wire"
)

var (
	// ErrInvalidArgument wraps bad options and topic specifications. It is
	// the same value as the one the router's topic validation wraps, so
	// errors.Is works for both.
	ErrInvalidArgument = wire.ErrInvalidArgument
	// ErrPayloadTooLarge wraps the refusal of a sample larger than the NATS
	// server's maximum payload.
	ErrPayloadTooLarge = errors.New("payload too large for NATS")
	// ErrNotParallax wraps the refusal of a NATS message whose Parallax
	// headers are missing or malformed.
	ErrNotParallax = errors.New("not a Parallax gateway message")
)
