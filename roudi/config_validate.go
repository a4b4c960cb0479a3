package roudi

import (
	"errors"
	"fmt"
	"math/bits"
	"strings"
)

// Validation bounds.
const (
	minChunkSize   = 64
	maxChunkSize   = GiB
	maxPoolCount   = 1024
	maxRingCap     = 1 << 24
	maxClientLimit = 1<<16 - 1 // ClientID is a uint16 and 0 is reserved
	maxSocketPath  = 107       // sun_path holds 108 bytes including the NUL
	maxDomainLen   = 64
	maxTotalPools  = TiB
)

// Validate checks every key of c and returns nil or the joined
// [*ConfigError]s, each naming the key and the problem, for example
// "pools[2].chunk_size: must be a multiple of 64 between 64 B and 1 GiB,
// got 100".
func (c *Config) Validate() error {
	var errs []error
	bad := func(key, format string, args ...any) {
		errs = append(errs, &ConfigError{Key: key, Problem: fmt.Sprintf(format, args...)})
	}

	switch {
	case c.Domain == "":
		bad("domain", "must not be empty")
	case len(c.Domain) > maxDomainLen:
		bad("domain", "must be at most %d bytes, got %d", maxDomainLen, len(c.Domain))
	case strings.Trim(c.Domain, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789._-") != "" || c.Domain[0] == '.':
		bad("domain", "must use only letters, digits, '.', '_' and '-' and not start with '.', got %q", c.Domain)
	}
	if len(c.Socket) > maxSocketPath {
		bad("socket", "path must be at most %d bytes, got %d", maxSocketPath, len(c.Socket))
	}
	if c.SocketDirMode&^0o777 != 0 || c.SocketDirMode&0o700 != 0o700 {
		bad("socket_dir_mode", "must be a permission mode within 0777 that grants the owner rwx, got %v", c.SocketDirMode)
	}
	if c.SocketMode&^0o777 != 0 || c.SocketMode&0o600 != 0o600 {
		bad("socket_mode", "must be a permission mode within 0777 that grants the owner rw, got %v", c.SocketMode)
	}
	switch c.LogLevel {
	case "debug", "info", "warn", "error":
	default:
		bad("log_level", "must be one of debug, info, warn, error, got %q", c.LogLevel)
	}

	l := c.Limits
	positive := func(key string, v int) {
		if v <= 0 {
			bad(key, "must be positive, got %d", v)
		}
	}
	positive("limits.max_clients", l.MaxClients)
	if l.MaxClients > maxClientLimit {
		bad("limits.max_clients", "must be at most %d, got %d", maxClientLimit, l.MaxClients)
	}
	positive("limits.max_topics", l.MaxTopics)
	positive("limits.max_publishers", l.MaxPublishers)
	positive("limits.max_subscribers", l.MaxSubscribers)
	positive("limits.max_connections", l.MaxConnections)
	if l.MaxHistory < 0 {
		bad("limits.max_history", "must not be negative, got %d", l.MaxHistory)
	}
	positive("limits.max_queue_capacity", l.MaxQueueCapacity)
	positive("limits.max_requests_per_second", l.MaxRequestsPerSecond)
	positive("limits.request_burst", l.RequestBurst)

	pow2 := func(key string, v int) bool {
		if v < 2 || v > maxRingCap || bits.OnesCount(uint(v)) != 1 {
			bad(key, "must be a power of two between 2 and %d, got %d", maxRingCap, v)
			return false
		}
		return true
	}
	okDef := pow2("rings.default_capacity", c.Rings.DefaultCapacity)
	okMax := pow2("rings.max_capacity", c.Rings.MaxCapacity)
	if okDef && okMax && c.Rings.DefaultCapacity > c.Rings.MaxCapacity {
		bad("rings.default_capacity", "must not exceed rings.max_capacity %d, got %d", c.Rings.MaxCapacity, c.Rings.DefaultCapacity)
	}
	if okDef && l.MaxQueueCapacity > 0 && c.Rings.DefaultCapacity > l.MaxQueueCapacity {
		bad("rings.default_capacity", "must not exceed limits.max_queue_capacity %d, got %d", l.MaxQueueCapacity, c.Rings.DefaultCapacity)
	}

	c.validateMemory(bad) // config_memory.go

	patterns := make(map[string]int)
	for i, r := range c.Access {
		key := fmt.Sprintf("access[%d]", i)
		if err := checkTopicPattern(r.Topic); err != nil {
			bad(key+".topic", "%v", err)
		} else if j, dup := patterns[r.Topic]; dup {
			bad(key+".topic", "duplicates access[%d].topic %q", j, r.Topic)
		} else {
			patterns[r.Topic] = i
		}
		if len(r.PublishUIDs)+len(r.PublishGIDs)+len(r.SubscribeUIDs)+len(r.SubscribeGIDs) == 0 {
			bad(key, "restricts nothing: list publish_uids, publish_gids, subscribe_uids or subscribe_gids")
		}
	}
	return errors.Join(errs...)
}

// checkTopicPattern validates an access rule's topic: a non-empty exact
// name, or a prefix followed by a single trailing "*".
func checkTopicPattern(p string) error {
	if p == "" {
		return errors.New("must not be empty")
	}
	if i := strings.IndexByte(p, '*'); i >= 0 && i != len(p)-1 {
		return fmt.Errorf("'*' is only allowed as the last character (a prefix glob such as \"frames/*\"), got %q", p)
	}
	return nil
}
