package gateway

import (
	"github.com/prometheus/client_golang/prometheus"
)

// Collector returns a Prometheus collector of the gateway's counters
// (parallax_gateway_*_total, labelled with the gateway id), read from
// [Gateway.Stats] at each scrape. `parallax gateway -metrics ADDR` serves
// it; an embedding program registers it in its own registry.
func (g *Gateway) Collector() prometheus.Collector { return &collector{g: g} }

type collector struct{ g *Gateway }

var gatewayMetrics = []struct {
	name, help string
	get        func(Stats) uint64
}{
	{"parallax_gateway_exported_total", "Samples published to NATS.", func(s Stats) uint64 { return s.Exported }},
	{"parallax_gateway_imported_total", "NATS messages published locally.", func(s Stats) uint64 { return s.Imported }},
	{"parallax_gateway_forwarded_total", "Messages forwarded in either direction.", func(s Stats) uint64 { return s.Forwarded }},
	{"parallax_gateway_dropped_total", "Messages lost inside the gateway.", func(s Stats) uint64 { return s.Dropped }},
	{"parallax_gateway_refused_total", "Messages refused (type mismatch, too large, malformed).", func(s Stats) uint64 { return s.Refused }},
	{"parallax_gateway_looped_total", "Messages not forwarded by loop prevention.", func(s Stats) uint64 { return s.Looped }},
	{"parallax_gateway_gaps_total", "Origin sequence numbers that never arrived.", func(s Stats) uint64 { return s.Gaps }},
	{"parallax_gateway_reordered_total", "Messages that arrived out of order.", func(s Stats) uint64 { return s.Reordered }},
	{"parallax_gateway_reconnects_total", "Reconnections to NATS or the router.", func(s Stats) uint64 { return s.Reconnects }},
}

// topicMetrics are the per-topic counters, labelled with the gateway id,
// the topic and the direction (export or import).
var topicMetrics = []struct {
	name, help string
	get        func(TopicStats) uint64
}{
	{"parallax_gateway_topic_forwarded_total", "Messages forwarded, per topic and direction.", func(s TopicStats) uint64 { return s.Forwarded }},
	{"parallax_gateway_topic_dropped_total", "Messages lost inside the gateway, per topic and direction.", func(s TopicStats) uint64 { return s.Dropped }},
	{"parallax_gateway_topic_refused_total", "Messages refused, per topic and direction.", func(s TopicStats) uint64 { return s.Refused }},
	{"parallax_gateway_topic_gaps_total", "Origin sequence numbers that never arrived, per topic and direction.", func(s TopicStats) uint64 { return s.Gaps }},
}

func (c *collector) topicDesc(i int) *prometheus.Desc {
	m := topicMetrics[i]
	return prometheus.NewDesc(m.name, m.help, []string{"topic", "direction"}, prometheus.Labels{"gateway": c.g.ID()})
}

func (c *collector) desc(i int) *prometheus.Desc {
	m := gatewayMetrics[i]
	return prometheus.NewDesc(m.name, m.help, nil, prometheus.Labels{"gateway": c.g.ID()})
}

// Describe implements prometheus.Collector.
func (c *collector) Describe(ch chan<- *prometheus.Desc) {
	for i := range gatewayMetrics {
		ch <- c.desc(i)
	}
	for i := range topicMetrics {
		ch <- c.topicDesc(i)
	}
}

// Collect implements prometheus.Collector.
func (c *collector) Collect(ch chan<- prometheus.Metric) {
	s := c.g.Stats()
	for i, m := range gatewayMetrics {
		ch <- prometheus.MustNewConstMetric(c.desc(i), prometheus.CounterValue, float64(m.get(s)))
	}
	for _, t := range c.g.TopicStats() {
		dir := "import"
		if t.Export {
			dir = "export"
		}
		for i, m := range topicMetrics {
			ch <- prometheus.MustNewConstMetric(c.topicDesc(i), prometheus.CounterValue, float64(m.get(t)), t.Topic, dir)
		}
	}
}
