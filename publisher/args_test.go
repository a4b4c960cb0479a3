package publisher_test

import (
	"context"
	"errors"
	"testing"

	"github.com/parallax-ipc/parallax"
	"github.com/parallax-ipc/parallax/publisher"
)

// Arguments the client can reject itself fail with an error that matches
// the public parallax.ErrInvalidArgument, before any router is asked.
func TestNewInvalidArgument(t *testing.T) {
	t.Parallel()
	sock := t.TempDir() + "/none.sock" // no router: validation comes first
	for name, tc := range map[string]struct {
		topic string
		opts  publisher.Options
	}{
		"empty topic":      {"", publisher.Options{}},
		"control char":     {"a\x01b", publisher.Options{}},
		"negative history": {"ok", publisher.Options{History: -1}},
	} {
		tc.opts.Socket = sock
		_, err := publisher.New(context.Background(), tc.topic, tc.opts)
		if !errors.Is(err, parallax.ErrInvalidArgument) {
			t.Errorf("%s: err = %v, want parallax.ErrInvalidArgument", name, err)
		}
	}
}
