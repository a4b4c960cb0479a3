package discovery_test

import (
	"context"
	"errors"
	"testing"

	"github.com/parallax-ipc/parallax"
	"github.com/parallax-ipc/parallax/internal/discovery"
)

// A malformed domain is refused with the public parallax.ErrInvalidArgument.
func TestDialInvalidDomainIsInvalidArgument(t *testing.T) {
	t.Parallel()
	_, err := discovery.Dial(context.Background(), discovery.DialOptions{Domain: "bad domain"})
	if !errors.Is(err, parallax.ErrInvalidArgument) {
		t.Errorf("Dial: err = %v, want parallax.ErrInvalidArgument", err)
	}
}
