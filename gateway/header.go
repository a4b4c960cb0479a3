package gateway

import (
	"fmt"
	"strconv"

	"github.com/nats-io/nats.go"
)

// NATS header names of a bridged sample (see the package documentation).
const (
	HeaderSeq       = "Parallax-Seq"
	HeaderTimestamp = "Parallax-Timestamp"
	HeaderType      = "Parallax-Type"
	HeaderPublisher = "Parallax-Publisher"
	HeaderGateway   = "Parallax-Gateway"
)

// Meta is the Parallax header of a bridged sample.
type Meta struct {
	Seq       uint64
	Timestamp int64 // unix nanoseconds
	Type      Type
	Publisher uint32 // origin publisher id in the exporting domain
	Gateway   string // exporting gateway id
}

// encode writes m into h, reusing h's value slices (no allocation beyond
// the formatted numbers).
func (m *Meta) encode(h nats.Header, typ string) {
	set := func(k, v string) {
		if s := h[k]; len(s) == 1 {
			s[0] = v
			return
		}
		h[k] = []string{v}
	}
	set(HeaderSeq, strconv.FormatUint(m.Seq, 10))
	set(HeaderTimestamp, strconv.FormatInt(m.Timestamp, 10))
	set(HeaderType, typ)
	set(HeaderPublisher, strconv.FormatUint(uint64(m.Publisher), 10))
	set(HeaderGateway, m.Gateway)
}

// DecodeMeta reads the Parallax header of a NATS message. A missing or
// malformed field is an error wrapping [ErrNotParallax].
func DecodeMeta(h nats.Header) (Meta, error) {
	get := func(k string) (string, error) {
		v := h[k]
		if len(v) != 1 {
			return "", fmt.Errorf("header %s: %d values, want 1: %w", k, len(v), ErrNotParallax)
		}
		return v[0], nil
	}
	var m Meta
	var err error
	var s string
	if s, err = get(HeaderGateway); err != nil {
		return m, err
	}
	m.Gateway = s
	if s, err = get(HeaderSeq); err != nil {
		return m, err
	}
	if m.Seq, err = strconv.ParseUint(s, 10, 64); err != nil {
		return m, fmt.Errorf("header %s %q: %w", HeaderSeq, s, ErrNotParallax)
	}
	if s, err = get(HeaderTimestamp); err != nil {
		return m, err
	}
	if m.Timestamp, err = strconv.ParseInt(s, 10, 64); err != nil {
		return m, fmt.Errorf("header %s %q: %w", HeaderTimestamp, s, ErrNotParallax)
	}
	if s, err = get(HeaderPublisher); err != nil {
		return m, err
	}
	p, err := strconv.ParseUint(s, 10, 32)
	if err != nil {
		return m, fmt.Errorf("header %s %q: %w", HeaderPublisher, s, ErrNotParallax)
	}
	m.Publisher = uint32(p)
	if s, err = get(HeaderType); err != nil {
		return m, err
	}
	if m.Type, err = ParseType(s); err != nil {
		return m, fmt.Errorf("header %s: %w: %w", HeaderType, err, ErrNotParallax)
	}
	return m, nil
}
