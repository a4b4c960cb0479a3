package roudi

import (
	"cmp"
	"fmt"
	"slices"
	"strconv"
	"time"

	"github.com/parallax-ipc/parallax/roudi/internal/core"

	"github.com/parallax-ipc/parallax"
	"github.com/parallax-ipc/parallax/internal/wire"
)

// Component counters: client-side components that are more than a
// publisher or subscriber (the NATS gateway) report their own counters with
// wire.ReportCounters, periodically and once when they stop. The router
// keeps the latest report of each (control connection, component,
// instance), replacing it on every report, and forgets a connection's
// reports when the connection ends (dropConn). Introspection lists them
// (wire.ListComponents, Introspection.Components) and the metrics export
// them as parallax_component_counter_total.
//
// The router only stores and shows the numbers; it does not interpret them.
// A report is a request like any other, so the connection's rate limit
// (server_guard.go) bounds how often a client can send one, and
// wire.MaxComponentsPerConn bounds how many instances it can keep on record.

// componentKey names one component instance of a connection.
type componentKey struct{ component, instance string }

// componentReport is the latest report of one component instance.
type componentReport struct {
	counters []wire.Counter
	at       time.Time
}

// componentReports holds the latest reports by connection. The zero value
// is ready to use; it is owned by the Serve goroutine.
type componentReports map[core.ConnID]map[componentKey]componentReport

// reportCounters handles a wire.ReportCounters on the Serve goroutine: it
// records the report (replacing the instance's previous one) and answers
// Ack, or refuses with an error wrapping parallax.ErrLimit a new instance
// beyond wire.MaxComponentsPerConn.
func (s *Server) reportCounters(c *serverConn, reqID uint32, m *wire.ReportCounters) {
	o := &s.obs
	key := componentKey{m.Component, m.Instance}
	byKey := o.components[c.id]
	if _, ok := byKey[key]; !ok && len(byKey) >= wire.MaxComponentsPerConn {
		s.replyError(c, reqID, fmt.Errorf("report counters of %s %q: this connection already reports %d component instances (the limit): %w",
			m.Component, m.Instance, len(byKey), parallax.ErrLimit))
		return
	}
	if byKey == nil {
		if o.components == nil {
			o.components = componentReports{}
		}
		byKey = map[componentKey]componentReport{}
		o.components[c.id] = byKey
	}
	byKey[key] = componentReport{counters: slices.Clone(m.Counters), at: time.Now()}
	s.send(c, reqID, &wire.Ack{}, nil)
}

// forgetComponents drops the reports of a connection that ended.
func (o *observer) forgetComponents(id core.ConnID) { delete(o.components, id) }

// componentStats lists the latest reports, sorted by component, instance
// and client id.
func (s *Server) componentStats(now time.Time) []wire.ComponentStat {
	var out []wire.ComponentStat
	for id, byKey := range s.obs.components {
		c := s.conns[id]
		if c == nil {
			continue // gone; dropConn forgets it
		}
		for k, r := range byKey {
			out = append(out, wire.ComponentStat{
				ClientID: uint16(c.client), PID: c.sc.Cred.PID, Component: k.component, Instance: k.instance,
				AgeMs: uint64(max(0, now.Sub(r.at).Milliseconds())), Counters: slices.Clone(r.counters),
			})
		}
	}
	slices.SortFunc(out, func(a, b wire.ComponentStat) int {
		return cmp.Or(cmp.Compare(a.Component, b.Component), cmp.Compare(a.Instance, b.Instance), cmp.Compare(a.ClientID, b.ClientID))
	})
	return out
}

// clientLabel is the client label of a component's metrics.
func clientLabel(id uint16) string { return strconv.Itoa(int(id)) }
