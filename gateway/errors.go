package gateway

import (
	"errors"

	"github.com/parallax-ipc/parallax"
)

var (
	// ErrInvalidArgument wraps bad options and topic specifications. It is
	// [parallax.ErrInvalidArgument], the value client-side validation and
	// the router's refusals wrap, so errors.Is works for all of them.
	ErrInvalidArgument = parallax.ErrInvalidArgument
	// ErrPayloadTooLarge wraps the refusal of a sample larger than the NATS
	// server's maximum payload.
	ErrPayloadTooLarge = errors.New("payload too large for NATS")
	// ErrNotParallax wraps the refusal of a NATS message whose Parallax
	// headers are missing or malformed.
	ErrNotParallax = errors.New("not a Parallax gateway message")
)
