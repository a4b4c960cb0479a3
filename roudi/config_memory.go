package roudi

import "github.com/parallax-ipc/parallax/roudi/internal/core"

// Memory selects the memory model ([memory] in TOML).
type Memory struct {
	// Model is "owned", the only model, also when empty: each publisher
	// owns its data segments, each connection has its own segment (design
	// docs/design/memory-ownership.md). "shared", the removed model of
	// router-wide pools every client mapped, is refused ([ErrRemovedKey]).
	Model MemoryModel `toml:"model"`
	// Backing is where publishers' data segments live:
	// "memfd" (the default, also when empty) or "file", a mapped file the
	// router creates in Path (a tmpfs or DAX mount, say), see
	// config_backing.go.
	Backing Backing `toml:"backing"`
	// Path is the directory of file-backed data segments (Backing "file").
	Path string `toml:"path"`
}

// MemoryModel names a memory model.
type MemoryModel string

// Memory models. ModelShared names the removed shared model only so that
// a configuration asking for it is refused with a message naming it.
const (
	ModelShared MemoryModel = "shared"
	ModelOwned  MemoryModel = "owned"
)

// Publishers sizes publishers' owned memory ([publishers] in TOML; see
// the README's "Memory" section for the sizing formula).
type Publishers struct {
	// DefaultMaxPayload is the chunk size of an untyped publisher that
	// declares no maximum payload: a multiple of 64.
	DefaultMaxPayload ByteSize `toml:"default_max_payload"`
	// DefaultMaxLoans is a publisher's loans outstanding at once unless it
	// declares its own.
	DefaultMaxLoans int `toml:"default_max_loans"`
	// DefaultMaxHeld is a subscriber's samples held at once per connection
	// unless it declares its own.
	DefaultMaxHeld int `toml:"default_max_held"`
	// ConnectionBudget caps the chunk bytes one connection keeps
	// outstanding (its effective queue depth for large payloads).
	ConnectionBudget ByteSize `toml:"connection_budget"`
	// Hugepages is "auto" (2 MiB pages for data segments of at least
	// HugepageMinBytes, normal pages when none are free), "never" or
	// "always" (2 MiB pages required).
	Hugepages        HugepageMode `toml:"hugepages"`
	HugepageMinBytes ByteSize     `toml:"hugepage_min_bytes"`
}

// HugepagesAlways requires 2 MiB pages for every owned data segment
// ([Publishers.Hugepages]).
const HugepagesAlways HugepageMode = "always"

// validateMemory checks [memory], [publishers] and the owned-model
// [limits] keys.
func (c *Config) validateMemory(bad func(key, format string, args ...any)) {
	if c.Memory.Model != ModelOwned {
		bad("memory.model", `must be "owned" (the shared model was removed), got %q`, c.Memory.Model)
	}
	c.validateBacking(bad) // config_backing.go
	p := c.Publishers
	if p.DefaultMaxPayload < minChunkSize || p.DefaultMaxPayload > maxChunkSize || p.DefaultMaxPayload%64 != 0 {
		bad("publishers.default_max_payload", "must be a multiple of 64 between 64 B and 1 GiB, got %d", uint64(p.DefaultMaxPayload))
	}
	if p.DefaultMaxLoans < 1 || p.DefaultMaxLoans > 1<<20 {
		bad("publishers.default_max_loans", "must be between 1 and 1048576, got %d", p.DefaultMaxLoans)
	}
	if p.DefaultMaxHeld < 1 || p.DefaultMaxHeld > 1<<20 {
		bad("publishers.default_max_held", "must be between 1 and 1048576, got %d", p.DefaultMaxHeld)
	}
	if p.ConnectionBudget < 2*minChunkSize {
		bad("publishers.connection_budget", "must be at least 128 B, got %d", uint64(p.ConnectionBudget))
	}
	switch p.Hugepages {
	case HugepagesAuto, HugepagesNever, HugepagesAlways:
	default:
		bad("publishers.hugepages", `must be one of "auto", "never", "always", got %q`, p.Hugepages)
	}
	l := c.Limits
	if l.MaxPublisherBytes == 0 {
		bad("limits.max_publisher_bytes", "must be positive")
	}
	if l.MaxSharedBytes < l.MaxPublisherBytes {
		bad("limits.max_shared_bytes", "must not be less than limits.max_publisher_bytes %v, got %v", l.MaxPublisherBytes, l.MaxSharedBytes)
	}
	if l.MaxSegmentsPerPublisher < 1 || l.MaxSegmentsPerPublisher > 4096 {
		bad("limits.max_segments_per_publisher", "must be between 1 and 4096, got %d", l.MaxSegmentsPerPublisher)
	}
}

// memoryRules translates the owned-model keys for the core.
func (c *Config) memoryRules() core.Memory {
	p := c.Publishers
	m := core.Memory{
		DefaultMaxPayload: uint32(p.DefaultMaxPayload), DefaultMaxLoans: p.DefaultMaxLoans, DefaultMaxHeld: p.DefaultMaxHeld,
		ConnectionBudget: uint64(p.ConnectionBudget), HugepageMinBytes: uint64(p.HugepageMinBytes),
		MaxPublisherBytes: uint64(c.Limits.MaxPublisherBytes), MaxSharedBytes: uint64(c.Limits.MaxSharedBytes),
		MaxSegmentsPerPublisher: c.Limits.MaxSegmentsPerPublisher,
	}
	switch p.Hugepages {
	case HugepagesNever:
		m.Hugepages = core.HugeNever
	case HugepagesAlways:
		m.Hugepages = core.HugeAlways
	}
	if c.Memory.Backing == BackingFile {
		m.Hugepages = core.HugeNever // the mount decides the pages
	}
	return m
}
