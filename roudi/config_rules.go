package roudi

import "github.com/parallax-ipc/parallax/roudi/internal/core"

// rules translates the (validated) configuration into what the router core
// decides by. A message size limit of 0 means no limit beyond [limits]
// max_publisher_bytes.
func (c *Config) rules() core.Rules {
	l := c.Limits
	maxMsg := l.MaxMessageSize
	r := core.Rules{
		Limits: core.Limits{MaxClients: l.MaxClients, MaxTopics: l.MaxTopics, MaxPublishers: l.MaxPublishers,
			MaxSubscribers: l.MaxSubscribers, MaxConnections: l.MaxConnections, MaxHistory: l.MaxHistory,
			MaxQueueCapacity: l.MaxQueueCapacity, MaxMessageSize: uint64(maxMsg)},
		Rings:  core.Rings{DefaultCapacity: c.Rings.DefaultCapacity, MaxCapacity: c.Rings.MaxCapacity},
		Memory: c.memoryRules(),
	}
	for _, a := range c.Access {
		r.Access = append(r.Access, core.AccessRule(a))
	}
	return r.Clone()
}
