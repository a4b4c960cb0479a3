package wire

import (
	"errors"
	"testing"

	"github.com/parallax-ipc/parallax"
)

// A router-side invalid-argument refusal, decoded on the client, matches the
// public sentinel.
func TestInvalidArgumentCodeIsPublic(t *testing.T) {
	t.Parallel()
	remote := (&Error{Code: CodeInvalidArgument, Message: "bad"}).Err()
	if !errors.Is(remote, parallax.ErrInvalidArgument) {
		t.Fatalf("decoded %v does not match parallax.ErrInvalidArgument", remote)
	}
	if CodeOf(parallax.ErrInvalidArgument) != CodeInvalidArgument {
		t.Fatalf("CodeOf(parallax.ErrInvalidArgument) = %v", CodeOf(parallax.ErrInvalidArgument))
	}
}
