package subscriber_test

import (
	"context"
	"errors"
	"testing"

	"github.com/parallax-ipc/parallax"
	"github.com/parallax-ipc/parallax/subscriber"
)

// Arguments the client can reject itself fail with an error that matches
// the public parallax.ErrInvalidArgument, before any router is asked.
func TestNewInvalidArgument(t *testing.T) {
	t.Parallel()
	sock := t.TempDir() + "/none.sock" // no router: validation comes first
	for name, tc := range map[string]struct {
		topic string
		opts  subscriber.Options
	}{
		"empty topic":       {"", subscriber.Options{}},
		"control char":      {"a\x01b", subscriber.Options{}},
		"negative history":  {"ok", subscriber.Options{History: -1}},
		"negative capacity": {"ok", subscriber.Options{QueueCapacity: -1}},
		"coalesce too long": {"ok", subscriber.Options{Coalesce: subscriber.MaxCoalesce + 1}},
		"unknown policy":    {"ok", subscriber.Options{Policy: 7}},
	} {
		tc.opts.Socket = sock
		_, err := subscriber.New(context.Background(), tc.topic, tc.opts)
		if !errors.Is(err, parallax.ErrInvalidArgument) {
			t.Errorf("%s: err = %v, want parallax.ErrInvalidArgument", name, err)
		}
	}
}
