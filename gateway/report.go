package gateway

import (
	"context"
	"time"

	"github.com/parallax-ipc/parallax/internal/clientrt"
	"github.com/parallax-ipc/parallax/internal/wire"
)

// Reporting the counters to the router. While its local endpoints run, a
// gateway sends its [Stats] to the router of its domain every
// [Options].ReportInterval over the process runtime's control connection
// (a wire.ReportCounters of component "gateway", instance = the gateway
// id), and once more when Run ends. The router shows the latest report in
// `parallax gateways` and in its metrics
// (parallax_component_counter_total{component="gateway"}) until the
// connection ends. After the router restarts, the next session of local
// endpoints reports again at once. A failed report is logged at debug level
// and changes nothing else: reporting never stops forwarding.

// DefaultReportInterval is the period of the counter reports to the router
// when [Options].ReportInterval is 0.
const DefaultReportInterval = time.Second

// reportTimeout bounds one report's round trip.
const reportTimeout = 2 * time.Second

// ReportComponent is the component kind the gateway reports its counters
// under.
const ReportComponent = "gateway"

// TopicReportComponent is the component kind of the per-topic reports: one
// per bridged topic and direction, instance [TopicInstance], counters
// named as in [TopicStats] (forwarded, dropped, refused, looped, gaps,
// reordered). A router keeps a bounded number of reports (16) per
// connection, so only the first 15 topics are reported; all
// are in [Gateway.TopicStats] and the gateway's own metrics.
const TopicReportComponent = "gateway-topic"

// maxTopicReports leaves one of a connection's report slots to the
// gateway's totals.
const maxTopicReports = wire.MaxComponentsPerConn - 1

// TopicInstance is the instance name of a topic's report: gateway id,
// "export" or "import", and the topic, separated by slashes.
func TopicInstance(id string, export bool, topic string) string {
	dir := "import"
	if export {
		dir = "export"
	}
	return id + "/" + dir + "/" + topic
}

// wireCounters returns t's counters as those of a report.
func (t TopicStats) wireCounters() []wire.Counter {
	return []wire.Counter{
		{Name: "forwarded", Value: t.Forwarded},
		{Name: "dropped", Value: t.Dropped},
		{Name: "refused", Value: t.Refused},
		{Name: "looped", Value: t.Looped},
		{Name: "gaps", Value: t.Gaps},
		{Name: "reordered", Value: t.Reordered},
	}
}

// wireCounters returns s as the counters of a report, named as in
// [Stats.String].
func (s Stats) wireCounters() []wire.Counter {
	return []wire.Counter{
		{Name: "forwarded", Value: s.Forwarded},
		{Name: "exported", Value: s.Exported},
		{Name: "imported", Value: s.Imported},
		{Name: "dropped", Value: s.Dropped},
		{Name: "refused", Value: s.Refused},
		{Name: "looped", Value: s.Looped},
		{Name: "gaps", Value: s.Gaps},
		{Name: "reordered", Value: s.Reordered},
		{Name: "reconnects", Value: s.Reconnects},
	}
}

// reportLoop reports at once, then every ReportInterval until ctx ends.
func (g *Gateway) reportLoop(ctx context.Context, rt *clientrt.Runtime) {
	t := time.NewTicker(g.opts.ReportInterval)
	defer t.Stop()
	for {
		g.report(ctx, rt)
		select {
		case <-ctx.Done():
			return
		case <-rt.Done():
			return // the session ends too; the next one reports
		case <-t.C:
		}
	}
}

// report sends the current counters to the router once.
func (g *Gateway) report(ctx context.Context, rt *clientrt.Runtime) {
	ctx, cancel := context.WithTimeout(ctx, reportTimeout)
	defer cancel()
	send := func(m *wire.ReportCounters) {
		_, files, err := rt.Request(ctx, m)
		for _, f := range files {
			f.Close()
		}
		if err != nil && ctx.Err() == nil {
			g.log.Debug("report counters to the router", "instance", m.Instance, "err", err)
		}
	}
	send(&wire.ReportCounters{Component: ReportComponent, Instance: g.id, Counters: g.Stats().wireCounters()})
	n := 0
	for _, t := range g.TopicStats() {
		inst := TopicInstance(g.id, t.Export, t.Topic)
		if n == maxTopicReports || wire.ValidateInstance(inst) != nil {
			continue
		}
		n++
		send(&wire.ReportCounters{Component: TopicReportComponent, Instance: inst, Counters: t.wireCounters()})
	}
}

// finalReport reports the counters once more when Run ends, if the
// router is still there.
func (g *Gateway) finalReport(ctx context.Context, rt *clientrt.Runtime) {
	if g.opts.ReportInterval < 0 {
		return
	}
	select {
	case <-rt.Done():
		return
	default:
	}
	g.report(context.WithoutCancel(ctx), rt)
}
