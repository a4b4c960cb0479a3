package core

import (
	"errors"
	"fmt"
	"math/bits"
)

// Rules are what the core decides requests by: registry limits, ring
// capacities, access rules and memory bounds. The router's TOML
// configuration (roudi.Config) is validated and translated into Rules; the core keeps
// its own copy.
type Rules struct {
	Limits Limits
	Rings  Rings
	Access []AccessRule
	Memory Memory // memory_types.go
}

// Limits bounds the registry. Every count is a total over the domain;
// requests beyond a limit fail with parallax.ErrLimit.
type Limits struct {
	MaxClients       int // connected client processes (≤ 65535)
	MaxTopics        int // topics with at least one endpoint
	MaxPublishers    int
	MaxSubscribers   int
	MaxConnections   int // publisher–subscriber rings
	MaxHistory       int // history a publisher keeps and a subscriber asks for
	MaxQueueCapacity int // ring capacity a subscriber asks for
	// MaxMessageSize bounds a topic's payload type size in bytes; 0 means
	// no bound.
	MaxMessageSize uint64
}

// Rings are the per-connection ring capacities, powers of two.
type Rings struct {
	DefaultCapacity int // for a subscriber that asks for none
	MaxCapacity     int
}

// An AccessRule restricts who may publish and subscribe on matching
// topics: Topic is an exact name or a prefix glob ending in "*"; the most
// specific matching rule wins (exact, else the longest prefix). For each
// direction, empty uid and gid lists leave it open; otherwise a client is
// allowed when its uid or its gid is listed. Topics no rule matches are
// open to everyone.
type AccessRule struct {
	Topic         string
	PublishUIDs   []uint32
	PublishGIDs   []uint32
	SubscribeUIDs []uint32
	SubscribeGIDs []uint32
}

// DefaultRules returns the limits of the router's embedded default
// configuration (roudi's default.toml; a roudi test keeps the two equal).
func DefaultRules() Rules {
	return Rules{
		Limits: Limits{MaxClients: 256, MaxTopics: 4096, MaxPublishers: 4096, MaxSubscribers: 8192,
			MaxConnections: 16384, MaxHistory: 64, MaxQueueCapacity: 4096},
		Rings: Rings{DefaultCapacity: 256, MaxCapacity: 4096},
		Memory: Memory{DefaultMaxPayload: 4096, DefaultMaxLoans: 4, DefaultMaxHeld: 16, ConnectionBudget: 32 << 20,
			Hugepages: HugeAuto, HugepageMinBytes: 8 << 20, MaxPublisherBytes: 1 << 30, MaxSharedBytes: 8 << 30,
			MaxSegmentsPerPublisher: 4096},
	}
}

// Clone returns a deep copy.
func (r Rules) Clone() Rules {
	c := r
	c.Access = make([]AccessRule, len(r.Access))
	for i, a := range r.Access {
		a.PublishUIDs = append([]uint32(nil), a.PublishUIDs...)
		a.PublishGIDs = append([]uint32(nil), a.PublishGIDs...)
		a.SubscribeUIDs = append([]uint32(nil), a.SubscribeUIDs...)
		a.SubscribeGIDs = append([]uint32(nil), a.SubscribeGIDs...)
		c.Access[i] = a
	}
	return c
}

// Validate reports every rule the core cannot work with.
func (r Rules) Validate() error {
	var errs []error
	positive := func(name string, v int) {
		if v <= 0 {
			errs = append(errs, fmt.Errorf("%s must be positive, got %d", name, v))
		}
	}
	l := r.Limits
	positive("max clients", l.MaxClients)
	if l.MaxClients > 1<<16-1 {
		errs = append(errs, fmt.Errorf("max clients must be at most 65535, got %d", l.MaxClients))
	}
	positive("max topics", l.MaxTopics)
	positive("max publishers", l.MaxPublishers)
	positive("max subscribers", l.MaxSubscribers)
	positive("max connections", l.MaxConnections)
	positive("max queue capacity", l.MaxQueueCapacity)
	if l.MaxHistory < 0 {
		errs = append(errs, fmt.Errorf("max history must not be negative, got %d", l.MaxHistory))
	}
	for _, c := range []struct {
		name string
		v    int
	}{{"default ring capacity", r.Rings.DefaultCapacity}, {"max ring capacity", r.Rings.MaxCapacity}} {
		if c.v <= 0 || bits.OnesCount(uint(c.v)) != 1 {
			errs = append(errs, fmt.Errorf("%s must be a power of two, got %d", c.name, c.v))
		}
	}
	m := r.Memory
	if m.DefaultMaxPayload == 0 || m.DefaultMaxPayload%64 != 0 {
		errs = append(errs, fmt.Errorf("default max payload must be a positive multiple of 64, got %d", m.DefaultMaxPayload))
	}
	positive("default max loans", m.DefaultMaxLoans)
	positive("default max held", m.DefaultMaxHeld)
	positive("max segments per publisher", m.MaxSegmentsPerPublisher)
	if m.ConnectionBudget == 0 || m.MaxPublisherBytes == 0 || m.MaxSharedBytes == 0 {
		errs = append(errs, errors.New("connection budget, max publisher bytes and max shared bytes must be positive"))
	}
	if m.Hugepages > HugeAlways {
		errs = append(errs, fmt.Errorf("unknown hugepage mode %v", m.Hugepages))
	}
	if r.Rings.DefaultCapacity > r.Rings.MaxCapacity {
		errs = append(errs, fmt.Errorf("default ring capacity %d exceeds the max %d", r.Rings.DefaultCapacity, r.Rings.MaxCapacity))
	}
	return errors.Join(errs...)
}
