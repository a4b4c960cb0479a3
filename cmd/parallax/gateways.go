package main

import (
	"io"
	"strings"
	"time"

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
		cols := []any{g.Instance, g.ClientID, g.PID}
		for _, name := range gatewayColumns {
			cols = append(cols, counterCell(g.Counters, name))
		}
		row(tw, append(cols, (time.Duration(g.AgeMs)*time.Millisecond).Round(100*time.Millisecond))...)
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
