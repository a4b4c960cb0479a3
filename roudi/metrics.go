package roudi

import (
	"context"
	"errors"
	"net"
	"net/http"
	"strconv"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/parallax-ipc/parallax/internal/wire"
)

// metrics is the router's Prometheus registry: a collector that turns an
// [Introspection] into metrics at scrape time, and the control-request
// latency histogram observed by the Serve goroutine. Safe for concurrent
// use.
type metrics struct {
	reg     *prometheus.Registry
	latency *prometheus.HistogramVec
	reclaim prometheus.Histogram
}

// scrapeTimeout bounds how long a scrape waits for the Serve goroutine.
const scrapeTimeout = 2 * time.Second

func (s *Server) metricsState() *metrics {
	s.obs.metricsOnce.Do(func() {
		m := &metrics{reg: prometheus.NewRegistry()}
		m.latency = prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Namespace: "parallax", Name: "control_request_duration_seconds",
			Help:    "Time the router spent handling a control request, by message type.",
			Buckets: prometheus.ExponentialBuckets(1e-6, 4, 10), // 1 µs .. 262 ms
		}, []string{"type"})
		m.reclaim = prometheus.NewHistogram(prometheus.HistogramOpts{
			Namespace: "parallax", Name: "reclaim_latency_seconds",
			Help:    "Time from a client process's exit (as the process monitor saw it; with eBPF the kernel's exit timestamp) until its chunks were back in the pools.",
			Buckets: prometheus.ExponentialBuckets(1e-4, 2, 14), // 100 µs .. 0.8 s
		})
		m.reg.MustRegister(m.latency, m.reclaim, routerCollector{s}, collectors.NewGoCollector(),
			collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
		s.obs.metrics = m
	})
	return s.obs.metrics
}

// timedRequest handles one control request and records how long it took.
func (s *Server) timedRequest(c *serverConn, env wire.Envelope) {
	start := time.Now()
	s.request(c, env)
	s.metricsState().latency.WithLabelValues(env.Type().String()).Observe(time.Since(start).Seconds())
}

// MetricsHandler returns the HTTP handler that serves the router's metrics
// in the Prometheus exposition format: per-topic counters (published,
// delivered, dropped, as the topic's publishers reported them), per-publisher
// memory and counters, process, topic and
// connection counts, reclaims, process-monitor events, the counters that
// client-side components (gateways) report, control-request latencies, and
// the Go runtime and process collectors. A scrape asks the Serve goroutine
// for a fresh [Introspection]; while Serve is not running only the latency
// histogram and the runtime metrics are served.
func (s *Server) MetricsHandler() http.Handler {
	return promhttp.HandlerFor(s.metricsState().reg, promhttp.HandlerOpts{})
}

// ServeMetrics serves [Server.MetricsHandler] at /metrics on ln until ctx
// is done, then shuts the HTTP server down and closes ln. It returns nil
// after a shutdown caused by ctx.
func (s *Server) ServeMetrics(ctx context.Context, ln net.Listener) error {
	mux := http.NewServeMux()
	mux.Handle("/metrics", s.MetricsHandler())
	hs := &http.Server{Handler: mux, ReadHeaderTimeout: 5 * time.Second}
	done := make(chan struct{})
	go func() {
		defer close(done)
		<-ctx.Done()
		sctx, cancel := context.WithTimeout(context.Background(), time.Second)
		defer cancel()
		_ = hs.Shutdown(sctx)
	}()
	err := hs.Serve(ln)
	if errors.Is(err, http.ErrServerClosed) {
		<-done
		return nil
	}
	return err
}

// routerCollector turns an Introspection into const metrics. It is an
// unchecked collector (its label sets change with the registry).
type routerCollector struct{ s *Server }

func (routerCollector) Describe(chan<- *prometheus.Desc) {}

var (
	descTopicPublished = prometheus.NewDesc("parallax_topic_published_total", "Samples a topic's publishers reported published (once per publish, however many subscribers), including publishers gone.", []string{"topic"}, nil)
	descTopicDelivered = prometheus.NewDesc("parallax_topic_delivered_total", "Pushes into a topic's subscribers' queues its publishers reported, including publishers gone.", []string{"topic"}, nil)
	descTopicDropped   = prometheus.NewDesc("parallax_topic_dropped_total", "Samples a topic's publishers reported their subscribers missed (discard-oldest overwrites, block-producer timeouts), including publishers gone.", []string{"topic"}, nil)
	descTopicPubs      = prometheus.NewDesc("parallax_topic_publishers", "Publishers of a topic.", []string{"topic"}, nil)
	descTopicSubs      = prometheus.NewDesc("parallax_topic_subscribers", "Subscribers of a topic.", []string{"topic"}, nil)
	descPubChunks      = prometheus.NewDesc("parallax_publisher_chunks", "Chunks in a live publisher's data segments (owned model; the router's own figure).", pubLabels, nil)
	descPubBytes       = prometheus.NewDesc("parallax_publisher_segment_bytes", "Bytes of a live publisher's data segments (owned model; the router's own figure).", pubLabels, nil)
	descPubInUse       = prometheus.NewDesc("parallax_publisher_in_use_chunks", "Chunks a publisher reports in use: loaned, in history, or delivered and not returned (owned model; the publisher's own word).", pubLabels, nil)
	descPubLoans       = prometheus.NewDesc("parallax_publisher_loans", "Chunks a publisher reports loaned and not yet published or released.", pubLabels, nil)
	descPubHistory     = prometheus.NewDesc("parallax_publisher_history_chunks", "Chunks a publisher reports kept for late joiners.", pubLabels, nil)
	descPubOut         = prometheus.NewDesc("parallax_publisher_outstanding_chunks", "Deliveries a publisher reports not yet returned, over all its connections.", pubLabels, nil)
	descPubHigh        = prometheus.NewDesc("parallax_publisher_high_water_chunks", "Most chunks a publisher reports in use at once.", pubLabels, nil)
	descPubReclaimed   = prometheus.NewDesc("parallax_publisher_reclaimed_chunks_total", "Chunks a publisher reports taken back from removed connections (dead or cut subscribers).", pubLabels, nil)
	descPubBadReturns  = prometheus.NewDesc("parallax_publisher_bad_returns_total", "Returns a publisher reports refused (refs never given on that connection).", pubLabels, nil)
	descPubPublished   = prometheus.NewDesc("parallax_publisher_published_total", "Samples a publisher reports published (owned model; the publisher's own word).", pubLabels, nil)
	descPubDelivered   = prometheus.NewDesc("parallax_publisher_delivered_total", "Pushes into subscribers' queues a publisher reports, summed over its connections.", pubLabels, nil)
	descPubDropped     = prometheus.NewDesc("parallax_publisher_dropped_total", "Samples a publisher reports its subscribers missed (discard-oldest overwrites, block-producer timeouts).", pubLabels, nil)
	descPubUnconnected = prometheus.NewDesc("parallax_publisher_unconnected_total", "Samples a publisher reports published while no subscriber was connected (nobody received them).", pubLabels, nil)
	descPubRemoved     = prometheus.NewDesc("parallax_publisher_removed_connections_total", "Connections a publisher reports ended (closed, dead or cut subscribers).", pubLabels, nil)
	descPubAge         = prometheus.NewDesc("parallax_publisher_report_age_seconds", "Time since a publisher last reported a change of its memory accounting.", pubLabels, nil)
	descConnDelivered  = prometheus.NewDesc("parallax_connection_delivered_total", "Pushes into a subscriber's queue its publisher reports for one live connection (owned model; the publisher's own word).", connLabels, nil)
	descConnDropped    = prometheus.NewDesc("parallax_connection_dropped_total", "Samples a publisher reports one live connection's subscriber missed (discard-oldest take-backs, full-queue drops, block-producer timeouts).", connLabels, nil)
	descConnReturned   = prometheus.NewDesc("parallax_connection_returned_total", "Chunks a publisher reports one live connection's subscriber gave back.", connLabels, nil)
	descTombstones     = prometheus.NewDesc("parallax_publisher_tombstones", "Dead publishers whose data segments subscribers may still map (owned model).", nil, nil)
	descProcesses      = prometheus.NewDesc("parallax_processes", "Registered client processes.", nil, nil)
	descTopics         = prometheus.NewDesc("parallax_topics", "Topics.", nil, nil)
	descConnections    = prometheus.NewDesc("parallax_connections", "Publisher-subscriber connections (rings).", nil, nil)
	descReclaims       = prometheus.NewDesc("parallax_reclaims_total", "Dead clients whose resources were reclaimed.", nil, nil)
	descMonitor        = prometheus.NewDesc("parallax_monitor_events_total", "Process-exit reports, by source.", []string{"source"}, nil)
	descUptime         = prometheus.NewDesc("parallax_uptime_seconds", "Time since the router started.", nil, nil)
	descStalled        = prometheus.NewDesc("parallax_stalled_client_disconnects_total", "Control connections cut because the client did not read its socket (outgoing queue overflowed or a write made no progress within the write timeout).", nil, nil)
	descInfo           = prometheus.NewDesc("parallax_router_info", "Router build and domain (always 1).", []string{"version", "domain", "monitor"}, nil)
	descCompCounter    = prometheus.NewDesc("parallax_component_counter_total", "Latest reported value of a client-side component's counter (gateways: forwarded, exported, imported, dropped, ...).", []string{"component", "instance", "client", "counter"}, nil)
	descCompAge        = prometheus.NewDesc("parallax_component_report_age_seconds", "Time since a client-side component last reported its counters.", []string{"component", "instance", "client"}, nil)
)

func (rc routerCollector) Collect(ch chan<- prometheus.Metric) {
	ctx, cancel := context.WithTimeout(context.Background(), scrapeTimeout)
	defer cancel()
	select {
	case <-rc.s.ready:
	default:
		return // not serving: nothing to introspect
	}
	in, err := rc.s.Introspect(ctx)
	if err != nil {
		return
	}
	c := func(d *prometheus.Desc, t prometheus.ValueType, v float64, labels ...string) {
		ch <- prometheus.MustNewConstMetric(d, t, v, labels...)
	}
	for _, t := range in.Topics {
		c(descTopicPublished, prometheus.CounterValue, float64(t.Published), t.Name)
		c(descTopicDelivered, prometheus.CounterValue, float64(t.Delivered), t.Name)
		c(descTopicDropped, prometheus.CounterValue, float64(t.Dropped), t.Name)
		c(descTopicPubs, prometheus.GaugeValue, float64(t.Publishers), t.Name)
		c(descTopicSubs, prometheus.GaugeValue, float64(t.Subscribers), t.Name)
	}
	publisherMetrics(in, c)
	for _, cs := range in.Connections {
		if !cs.Reported {
			continue
		}
		l := []string{cs.Topic, strconv.FormatUint(uint64(cs.PubID), 10), strconv.FormatUint(uint64(cs.SubID), 10)}
		c(descConnDelivered, prometheus.CounterValue, float64(cs.Delivered), l...)
		c(descConnDropped, prometheus.CounterValue, float64(cs.Dropped), l...)
		c(descConnReturned, prometheus.CounterValue, float64(cs.Returned), l...)
	}
	r := in.Router
	c(descProcesses, prometheus.GaugeValue, float64(r.Processes))
	c(descTopics, prometheus.GaugeValue, float64(r.Topics))
	c(descConnections, prometheus.GaugeValue, float64(r.Connections))
	c(descReclaims, prometheus.CounterValue, float64(r.Reclaims))
	c(descUptime, prometheus.GaugeValue, float64(r.UptimeMs)/1000)
	c(descInfo, prometheus.GaugeValue, 1, r.Version, r.Domain, r.Monitor)
	c(descStalled, prometheus.CounterValue, float64(rc.s.guard.stalled.Load()))
	for _, src := range []string{"socket", "process-exit"} {
		c(descMonitor, prometheus.CounterValue, float64(in.MonitorEvents[src]), src)
	}
	for _, comp := range in.Components {
		client := clientLabel(comp.ClientID)
		c(descCompAge, prometheus.GaugeValue, float64(comp.AgeMs)/1000, comp.Component, comp.Instance, client)
		for _, ctr := range comp.Counters {
			c(descCompCounter, prometheus.CounterValue, float64(ctr.Value), comp.Component, comp.Instance, client, ctr.Name)
		}
	}
}

// pubLabels label the per-publisher metrics of the owned model. Their
// cardinality is bounded by the live publishers ([limits] max_publishers):
// series exist only while their publisher lives (the collector builds them
// at scrape time), tombstones are only counted, and there is no pid label.
// Publisher ids are not reused, so a restarted publisher starts new series;
// dashboards aggregate with sum by (topic).
var pubLabels = []string{"topic", "publisher"}

// connLabels label the per-connection metrics: one series per live
// connection whose publisher reported it, so at most [limits]
// max_connections per metric; ids, not pids or connection ids (a
// publisher–subscriber pair has one connection). Dashboards aggregate
// with sum by (topic) or sum by (topic, subscriber).
var connLabels = []string{"topic", "publisher", "subscriber"}

// publisherMetrics emits the owned model's per-publisher metrics: the
// router's own figures for every live publisher, the publisher's reported
// accounting for those that reported.
func publisherMetrics(in *Introspection, c func(*prometheus.Desc, prometheus.ValueType, float64, ...string)) {
	tombstones := 0
	for i := 0; i < len(in.PublisherSegments); {
		first := in.PublisherSegments[i]
		var chunks, bytes uint64
		for ; i < len(in.PublisherSegments) && in.PublisherSegments[i].PubID == first.PubID; i++ {
			chunks += uint64(in.PublisherSegments[i].Count)
			bytes += in.PublisherSegments[i].Bytes
		}
		if first.Dead {
			tombstones++
			continue
		}
		l := []string{first.Topic, strconv.FormatUint(uint64(first.PubID), 10)}
		c(descPubChunks, prometheus.GaugeValue, float64(chunks), l...)
		c(descPubBytes, prometheus.GaugeValue, float64(bytes), l...)
		if !first.Reported {
			continue
		}
		m := first.Memory
		c(descPubInUse, prometheus.GaugeValue, float64(m.InUse), l...)
		c(descPubLoans, prometheus.GaugeValue, float64(m.Loans), l...)
		c(descPubHistory, prometheus.GaugeValue, float64(m.History), l...)
		c(descPubOut, prometheus.GaugeValue, float64(m.Outstanding), l...)
		c(descPubHigh, prometheus.GaugeValue, float64(m.HighWater), l...)
		c(descPubReclaimed, prometheus.CounterValue, float64(m.Reclaimed), l...)
		c(descPubBadReturns, prometheus.CounterValue, float64(m.BadReturns), l...)
		c(descPubPublished, prometheus.CounterValue, float64(m.Published), l...)
		c(descPubDelivered, prometheus.CounterValue, float64(m.Delivered), l...)
		c(descPubDropped, prometheus.CounterValue, float64(m.Dropped), l...)
		c(descPubUnconnected, prometheus.CounterValue, float64(m.Unconnected), l...)
		c(descPubRemoved, prometheus.CounterValue, float64(m.Removed), l...)
		c(descPubAge, prometheus.GaugeValue, float64(first.AgeMs)/1000, l...)
	}
	c(descTombstones, prometheus.GaugeValue, float64(tombstones))
}
