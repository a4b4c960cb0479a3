package roudi

import (
	"errors"

	"github.com/BurntSushi/toml"
)

// ErrRemovedKey marks a configuration key of the deleted shared memory
// model ([[pools]], [growth], limits.max_holds, memory.model = "shared"):
// the router refuses such a file rather than ignore what it asks for.
var ErrRemovedKey = errors.New("key of the removed shared memory model")

// removedKeys returns a [*ConfigError] wrapping [ErrRemovedKey] for each
// key of the shared memory model that md defines, each saying what
// replaces it.
func removedKeys(md toml.MetaData, c *Config) []error {
	var errs []error
	bad := func(key, problem string) {
		errs = append(errs, &ConfigError{Key: key, Problem: problem, err: ErrRemovedKey})
	}
	if md.IsDefined("pools") {
		bad("pools", "router-wide pools were removed with the shared memory model: each publisher owns "+
			"its data segments, sized by [publishers] (default_max_payload, default_max_loans, connection_budget) "+
			"and bounded by [limits] (max_publisher_bytes, max_shared_bytes, max_message_size)")
	}
	if md.IsDefined("growth") {
		bad("growth", "pool growth was removed with the shared memory model: publishers' segments grow "+
			"on demand within [limits] max_publisher_bytes, max_shared_bytes and max_segments_per_publisher")
	}
	if md.IsDefined("limits", "max_holds") {
		bad("limits.max_holds", "hold tables were removed with the shared memory model: bound a publisher's "+
			"loans with [publishers] default_max_loans and a subscriber's held samples with default_max_held")
	}
	if md.IsDefined("memory", "model") && c.Memory.Model != ModelOwned {
		bad("memory.model", `the shared memory model was removed; "owned" is the only model (leave the key out), got `+
			`"`+string(c.Memory.Model)+`"; size publishers with [publishers] and bound them with [limits]`)
	}
	return errs
}

// isRemovedKey reports whether k is, or lies under, a key that
// [removedKeys] reports.
func isRemovedKey(k toml.Key) bool {
	switch {
	case len(k) == 0:
		return false
	case k[0] == "pools" || k[0] == "growth":
		return true
	default:
		return len(k) >= 2 && k[0] == "limits" && k[1] == "max_holds"
	}
}
