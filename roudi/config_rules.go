package roudi

import "github.com/parallax-ipc/parallax/roudi/internal/core"

// rules translates the (validated) configuration into what the router core
// decides by. A message size limit of 0 means what the largest pool chunk
// holds in the shared model and no limit beyond [limits]
// max_publisher_bytes in the owned model, which has no pools.
func (c *Config) rules() core.Rules {
	l := c.Limits
	maxMsg := l.MaxMessageSize
	if maxMsg == 0 && c.Memory.Model != ModelOwned {
		maxMsg = c.LargestChunk()
	}
	r := core.Rules{
		Limits: core.Limits{MaxClients: l.MaxClients, MaxTopics: l.MaxTopics, MaxPublishers: l.MaxPublishers,
			MaxSubscribers: l.MaxSubscribers, MaxConnections: l.MaxConnections, MaxHistory: l.MaxHistory,
			MaxQueueCapacity: l.MaxQueueCapacity, MaxMessageSize: uint64(maxMsg)},
		Rings: core.Rings{DefaultCapacity: c.Rings.DefaultCapacity, MaxCapacity: c.Rings.MaxCapacity},
		Growth: core.Growth{Enabled: c.Growth.Enabled, MaxSegmentsPerPool: c.Growth.MaxSegmentsPerPool,
			MaxTotalBytes: uint64(c.Growth.MaxTotalBytes), MaxDedicatedBytes: uint64(c.Growth.MaxDedicatedBytes)},
		Memory: c.memoryRules(),
	}
	for _, a := range c.Access {
		r.Access = append(r.Access, core.AccessRule(a))
	}
	return r.Clone()
}
