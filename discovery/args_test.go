package discovery_test

import (
	"errors"
	"testing"

	"github.com/parallax-ipc/parallax"
	"github.com/parallax-ipc/parallax/discovery"
)

// A malformed domain is refused with the public parallax.ErrInvalidArgument.
func TestInvalidDomainIsInvalidArgument(t *testing.T) {
	t.Parallel()
	_, err := discovery.SocketPath("no/slashes")
	if !errors.Is(err, parallax.ErrInvalidArgument) {
		t.Errorf("SocketPath: err = %v, want parallax.ErrInvalidArgument", err)
	}
}
