package parallax_test

import (
	"errors"
	"testing"

	"github.com/parallax-ipc/parallax"
)

func TestPolicyText(t *testing.T) {
	t.Parallel()
	for in, want := range map[string]parallax.Policy{
		"": parallax.DiscardOldest, "discard": parallax.DiscardOldest, "discard-oldest": parallax.DiscardOldest,
		"block": parallax.BlockProducer, "block-producer": parallax.BlockProducer,
	} {
		var p parallax.Policy
		if err := p.UnmarshalText([]byte(in)); err != nil || p != want {
			t.Errorf("UnmarshalText(%q) = %v, %v; want %v", in, p, err, want)
		}
		b, err := p.MarshalText()
		if err != nil {
			t.Fatal(err)
		}
		if back, err := parallax.ParsePolicy(string(b)); err != nil || back != want {
			t.Errorf("round trip of %v through %q = %v, %v", want, b, back, err)
		}
	}
	if _, err := parallax.ParsePolicy("drop-newest"); !errors.Is(err, parallax.ErrInvalidArgument) {
		t.Errorf("unknown policy: err = %v, want ErrInvalidArgument", err)
	}
	if _, err := parallax.Policy(7).MarshalText(); !errors.Is(err, parallax.ErrInvalidArgument) {
		t.Errorf("MarshalText(Policy(7)): err = %v", err)
	}
}
