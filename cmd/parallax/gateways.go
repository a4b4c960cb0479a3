package main

import (
	"fmt"
	"io"
	"strings"
	"time"

	"github.com/parallax-ipc/parallax/gateway"
	"github.com/parallax-ipc/parallax/internal/wire"
)

func init() {
	register(&command{name: "gateways", short: "list the NATS gateways attached to the router and the counters they report",
		usage: "[-json]", flags: introspectCommand("gateways", wantGateways, gatewaysTable)})
}

// gatewayColumns are the counters `parallax gateways` shows, in order
// (the names a gateway reports, see gateway.Stats).
var gatewayColumns = []string{"forwarded", "exported", "imported", "dropped", "refused", "looped", "gaps", "reordered", "reconnects"}

// gatewaysTable prints one row per gateway report: the gateway id, the
// reporting client, its counters ("-" for one it did not report) and the
// report's age.
func gatewaysTable(w io.Writer, v *view) {
	tw := newTable(w)
	head := []any{"GATEWAY", "CLIENT", "PID"}
	for _, c := range gatewayColumns {
		head = append(head, strings.ToUpper(c))
	}
	row(tw, append(head, "AGE")...)
	for _, g := range v.Components {
		if g.Component != gateway.ReportComponent {
			continue
		}
		cols := []any{g.Instance, g.ClientID, g.PID}
		for _, name := range gatewayColumns {
			cols = append(cols, counterCell(g.Counters, name))
		}
		row(tw, append(cols, (time.Duration(g.AgeMs)*time.Millisecond).Round(100*time.Millisecond))...)
	}
	tw.Flush()
	gatewayTopicsTable(w, v)
}

// gatewayTopicColumns are the per-topic counters (gateway.TopicStats).
var gatewayTopicColumns = []string{"forwarded", "dropped", "refused", "looped", "gaps", "reordered"}

// gatewayTopicsTable prints the gateways' per-topic reports (instance
// gateway/direction/topic), if any, below the gateways.
func gatewayTopicsTable(w io.Writer, v *view) {
	tw := newTable(w)
	head := true
	for _, c := range v.Components {
		if c.Component != gateway.TopicReportComponent {
			continue
		}
		if head {
			fmt.Fprintln(w)
			h := []any{"GATEWAY", "DIRECTION", "TOPIC"}
			for _, name := range gatewayTopicColumns {
				h = append(h, strings.ToUpper(name))
			}
			row(tw, h...)
			head = false
		}
		id, rest, _ := strings.Cut(c.Instance, "/")
		dir, topic, _ := strings.Cut(rest, "/")
		cols := []any{id, dir, topic}
		for _, name := range gatewayTopicColumns {
			cols = append(cols, counterCell(c.Counters, name))
		}
		row(tw, cols...)
	}
	tw.Flush()
}

// counterCell renders counter name of cs, or "-" when it is missing.
func counterCell(cs []wire.Counter, name string) any {
	for _, c := range cs {
		if c.Name == name {
			return c.Value
		}
	}
	return "-"
}
