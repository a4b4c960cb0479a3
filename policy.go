package parallax

import "fmt"

// A Policy is what a publisher does when a subscriber's queue is full. The
// zero value is [DiscardOldest]. Its numeric values are the ones the
// control protocol carries.
type Policy uint8

// Queue-full policies.
const (
	// DiscardOldest makes the publisher drop the subscriber's oldest queued
	// sample (counted as dropped): publishers never wait.
	DiscardOldest Policy = 0
	// BlockProducer makes the publisher wait for space, up to its block
	// timeout: lossless while the subscriber keeps up eventually.
	BlockProducer Policy = 1
)

// String returns "discard-oldest" or "block-producer".
func (p Policy) String() string {
	switch p {
	case DiscardOldest:
		return "discard-oldest"
	case BlockProducer:
		return "block-producer"
	}
	return fmt.Sprintf("Policy(%d)", uint8(p))
}

// Valid reports whether p is one of the defined policies.
func (p Policy) Valid() bool { return p == DiscardOldest || p == BlockProducer }

// ParsePolicy parses a policy as configuration files, flags and element
// properties write it: "discard-oldest" (also "discard", or "" for the
// default) or "block-producer" (also "block"). Anything else is an error
// wrapping [ErrInvalidArgument].
func ParsePolicy(s string) (Policy, error) {
	switch s {
	case "", "discard-oldest", "discard":
		return DiscardOldest, nil
	case "block-producer", "block":
		return BlockProducer, nil
	}
	return 0, fmt.Errorf("policy %q: want discard or block (discard-oldest, block-producer): %w", s, ErrInvalidArgument)
}

// MarshalText implements encoding.TextMarshaler with [Policy.String].
func (p Policy) MarshalText() ([]byte, error) {
	if !p.Valid() {
		return nil, fmt.Errorf("marshal %v: %w", p, ErrInvalidArgument)
	}
	return []byte(p.String()), nil
}

// UnmarshalText implements encoding.TextUnmarshaler with [ParsePolicy], so
// a Policy works with flag.TextVar and TOML or JSON configuration.
func (p *Policy) UnmarshalText(b []byte) error {
	v, err := ParsePolicy(string(b))
	if err != nil {
		return err
	}
	*p = v
	return nil
}
