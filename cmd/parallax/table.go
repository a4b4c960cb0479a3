package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/parallax-ipc/parallax"
	"github.com/parallax-ipc/parallax/gateway"
	"github.com/parallax-ipc/parallax/internal/discovery"
	"github.com/parallax-ipc/parallax/internal/wire"
)

// Helpers shared by the introspection and debugging commands: resolving
// and dialing the router with errors that say what to do, paging through
// introspection lists, and rendering aligned tables or JSON.

// requestTimeout bounds one dial or introspection request.
const requestTimeout = 5 * time.Second

// target resolves the router's socket path and domain from the global
// flags (and PARALLAX_DOMAIN / PARALLAX_SOCKET).
func (g *globals) target() (path, domain string, err error) {
	domain = g.domain
	if domain == "" {
		if domain, err = discovery.DefaultDomain(); err != nil {
			return "", "", err
		}
	} else if err := wire.ValidateDomain(domain); err != nil {
		return "", "", err
	}
	if g.socket != "" {
		return g.socket, domain, nil
	}
	path, err = discovery.SocketPath(domain)
	return path, domain, err
}

// failf prints "parallax <cmd>: <msg>" on stderr and returns code.
func failf(e *env, name string, code int, format string, args ...any) int {
	fmt.Fprintf(e.stderr, "parallax %s: %s\n", name, fmt.Sprintf(format, args...))
	return code
}

// routerError turns an error from dialing or talking to the router into
// the message and exit code the user needs: no router → exitNoRouter with
// how to start one; bad names → exitUsage.
func routerError(e *env, name string, g *globals, err error) int {
	path, domain, _ := g.target()
	switch {
	case errors.Is(err, parallax.ErrDaemonUnavailable):
		hint := "parallax-roudi -domain " + domain
		if g.socket != "" {
			hint += " -socket " + g.socket
		}
		return failf(e, name, exitNoRouter, "no router at %s (start one with: %s)", path, hint)
	case errors.Is(err, wire.ErrInvalidArgument):
		return failf(e, name, exitUsage, "%v", err)
	}
	return failf(e, name, exitFailure, "%v", err)
}

// dial connects to the router the global flags name.
func dial(ctx context.Context, g *globals) (*discovery.Client, error) {
	path, domain, err := g.target()
	if err != nil {
		return nil, err
	}
	ctx, cancel := context.WithTimeout(ctx, requestTimeout)
	defer cancel()
	return discovery.Dial(ctx, discovery.DialOptions{Socket: path, Domain: domain, Name: "parallax-cli"})
}

// request sends one introspection request with a timeout.
func request(ctx context.Context, c *discovery.Client, m wire.Message) (wire.Message, error) {
	ctx, cancel := context.WithTimeout(ctx, requestTimeout)
	defer cancel()
	r, files, err := c.Request(ctx, m, nil)
	for _, f := range files {
		f.Close()
	}
	return r, err
}

// listAll pages through an introspection list: mk builds the request for an
// offset, take appends a reply's entries and returns its Next.
func listAll(ctx context.Context, c *discovery.Client, mk func(off uint32) wire.Message, take func(wire.Message) uint32) error {
	off := uint32(0)
	for range 1 << 16 {
		r, err := request(ctx, c, mk(off))
		if err != nil {
			return err
		}
		if off = take(r); off == 0 {
			return nil
		}
	}
	return fmt.Errorf("introspection list does not end: %w", parallax.ErrProtocol)
}

// view is everything the introspection commands show.
type view struct {
	Router      wire.RouterInfo    `json:"router"`
	Processes   []wire.ProcessStat `json:"processes,omitempty"`
	Topics      []topicStat        `json:"topics,omitempty"`
	Connections []connStat         `json:"connections,omitempty"`
	// PublisherSegments are the owned model's publisher data segments,
	// each with its publisher's latest report of its own chunks.
	PublisherSegments []wire.PublisherSegStat `json:"publisher_segments,omitempty"`
	// Publishers are the live publishers of the owned model, one entry
	// each, with the message counters they reported (publishers.go).
	Publishers []publisherRow `json:"publishers,omitempty"`
	// Components are the latest counter reports of client-side components
	// (gateways).
	Components []wire.ComponentStat `json:"components,omitempty"`
}

// What to fetch into a view.
const (
	wantProcesses = 1 << iota
	wantTopics
	wantConnections
	wantComponents // every component report
	wantGateways   // the gateways' reports only
	wantPublishers // publisher data segments (owned model)
)

func fetch(ctx context.Context, c *discovery.Client, want int) (*view, error) {
	v := &view{}
	r, err := request(ctx, c, &wire.GetRouterInfo{})
	if err != nil {
		return nil, err
	}
	v.Router = *r.(*wire.RouterInfo)
	if want&wantProcesses != 0 {
		err = listAll(ctx, c, func(o uint32) wire.Message { return &wire.ListProcesses{Offset: o} },
			func(m wire.Message) uint32 {
				l := m.(*wire.ProcessList)
				v.Processes = append(v.Processes, l.Processes...)
				return l.Next
			})
	}
	if err == nil && want&wantTopics != 0 {
		err = listAll(ctx, c, func(o uint32) wire.Message { return &wire.ListTopics{Offset: o} },
			func(m wire.Message) uint32 {
				l := m.(*wire.TopicList)
				for _, t := range l.Topics {
					v.Topics = append(v.Topics, newTopicStat(t))
				}
				return l.Next
			})
	}
	if err == nil && want&wantConnections != 0 {
		err = listAll(ctx, c, func(o uint32) wire.Message { return &wire.ListConnections{Offset: o} },
			func(m wire.Message) uint32 {
				l := m.(*wire.ConnectionList)
				for _, c := range l.Connections {
					v.Connections = append(v.Connections, newConnStat(c))
				}
				return l.Next
			})
	}
	if err == nil && want&wantPublishers != 0 {
		err = listAll(ctx, c, func(o uint32) wire.Message { return &wire.ListPublisherSegments{Offset: o} },
			func(m wire.Message) uint32 {
				l := m.(*wire.PublisherSegmentList)
				v.PublisherSegments = append(v.PublisherSegments, l.Segments...)
				return l.Next
			})
		v.Publishers = publisherRows(v.PublisherSegments)
	}
	if err == nil && want&(wantComponents|wantGateways) != 0 {
		err = listAll(ctx, c, func(o uint32) wire.Message { return &wire.ListComponents{Offset: o} },
			func(m wire.Message) uint32 {
				l := m.(*wire.ComponentList)
				for _, cs := range l.Components {
					if want&wantComponents != 0 || cs.Component == gateway.ReportComponent || cs.Component == gateway.TopicReportComponent {
						v.Components = append(v.Components, cs)
					}
				}
				return l.Next
			})
	}
	return v, err
}

// introspectCommand is the flags function of topics, clients, pools and
// gateways: -json, then dial, fetch, and JSON or the table printer.
func introspectCommand(name string, want int, table func(w io.Writer, v *view)) func(fs *flag.FlagSet) runFunc {
	return func(fs *flag.FlagSet) runFunc {
		asJSON := fs.Bool("json", false, "print JSON instead of a table")
		return func(e *env, fs *flag.FlagSet, g *globals) int {
			if fs.NArg() != 0 {
				return failf(e, name, exitUsage, "unexpected argument %q", fs.Arg(0))
			}
			ctx := context.Background()
			c, err := dial(ctx, g)
			if err != nil {
				return routerError(e, name, g, err)
			}
			defer c.Close()
			v, err := fetch(ctx, c, want)
			if err != nil {
				return routerError(e, name, g, err)
			}
			if *asJSON {
				enc := json.NewEncoder(e.stdout)
				enc.SetIndent("", "  ")
				if err := enc.Encode(v); err != nil {
					return failf(e, name, exitFailure, "%v", err)
				}
				return exitOK
			}
			table(e.stdout, v)
			return exitOK
		}
	}
}

// newTable returns an aligned-column writer; Flush it when done.
func newTable(w io.Writer) *tabwriter.Writer { return tabwriter.NewWriter(w, 0, 4, 2, ' ', 0) }

func row(w io.Writer, cols ...any) {
	parts := make([]string, len(cols))
	for i, c := range cols {
		parts[i] = fmt.Sprint(c)
	}
	fmt.Fprintln(w, strings.Join(parts, "\t"))
}

// bytesize renders n bytes with a binary unit (4KiB, 1MiB).
func bytesize(n uint64) string {
	units := []string{"B", "KiB", "MiB", "GiB", "TiB"}
	i := 0
	for n >= 1024 && n%1024 == 0 && i < len(units)-1 {
		n /= 1024
		i++
	}
	return strconv.FormatUint(n, 10) + units[i]
}

// rate renders a per-second rate compactly.
func rate(r float64) string {
	switch {
	case r == 0:
		return "0"
	case r < 10:
		return strconv.FormatFloat(r, 'f', 1, 64)
	case r < 1e4:
		return strconv.FormatFloat(r, 'f', 0, 64)
	case r < 1e7:
		return strconv.FormatFloat(r/1e3, 'f', 1, 64) + "k"
	}
	return strconv.FormatFloat(r/1e6, 'f', 1, 64) + "M"
}

func typeName(t wire.TypeInfo) string {
	if t.Name == "" && t.Size == 0 {
		return "bytes"
	}
	s := t.Name
	if s == "" {
		s = "?"
	}
	if t.Size != 0 {
		s += "/" + strconv.FormatUint(uint64(t.Size), 10)
	}
	return s
}

func policyName(p uint8) string { return parallax.Policy(p).String() }

func routerLine(w io.Writer, r wire.RouterInfo) {
	fmt.Fprintf(w, "router %s pid %d domain %s up %s monitor %s: %d processes, %d topics, %d connections, %d reclaims\n",
		r.Version, r.PID, r.Domain, (time.Duration(r.UptimeMs) * time.Millisecond).Round(time.Second), r.Monitor,
		r.Processes, r.Topics, r.Connections, r.Reclaims)
}

// topicsTable shows the topics: their counters are what their publishers
// reported (about once a second), summed with those of publishers gone.
func topicsTable(w io.Writer, v *view) { topicsRateTable(w, v, nil) }

// topicsRateTable is topicsTable with per-second rates (top computes them
// from two refreshes) when rates is not nil.
func topicsRateTable(w io.Writer, v *view, rates map[string]topicRates) {
	tw := newTable(w)
	head := []any{"TOPIC", "TYPE", "PUBS", "SUBS", "PUBLISHED", "DELIVERED", "DROPPED"}
	if rates != nil {
		head = append(head, "PUB/S", "DELIV/S", "DROP/S")
	}
	row(tw, append(head, "QUEUE CAP")...)
	for _, t := range v.Topics {
		cols := []any{t.Name, typeName(t.Type), t.Publishers, t.Subscribers, t.Published, t.Delivered, t.Dropped}
		if r, ok := rates[t.Name]; ok && r.Known {
			cols = append(cols, rate(r.Publish), rate(r.Deliver), rate(r.Drop))
		} else if rates != nil {
			cols = append(cols, "-", "-", "-")
		}
		row(tw, append(cols, t.QueueCapacity)...)
	}
	tw.Flush()
	if len(v.Publishers) > 0 {
		fmt.Fprintln(w)
		publisherCountersTable(w, v)
	}
}

func clientsTable(w io.Writer, v *view) {
	tw := newTable(w)
	row(tw, "CLIENT", "PID", "UID", "GID", "NAME", "PUBS", "SUBS", "MONITOR")
	for _, p := range v.Processes {
		row(tw, p.ClientID, p.PID, p.UID, p.GID, p.Name, p.Publishers, p.Subscribers, p.Monitor)
	}
	tw.Flush()
	if len(v.Connections) == 0 {
		return
	}
	fmt.Fprintln(w)
	connectionsTable(w, v)
}

// connectionsTable shows one row per connection with the traffic its
// publisher reported ("?" until it did).
func connectionsTable(w io.Writer, v *view) {
	tw := newTable(w)
	row(tw, "CONN", "TOPIC", "PUB", "PUB PID", "SUB", "SUB PID", "CAPACITY", "POLICY", "DELIVERED", "DROPPED", "RETURNED")
	for _, c := range v.Connections {
		traffic := []any{"?", "?", "?"}
		if c.Reported {
			traffic = []any{c.Delivered, c.Dropped, c.Returned}
		}
		row(tw, append([]any{c.ConnID, c.Topic, c.PubID, c.PubPID, c.SubID, c.SubPID, c.Capacity, policyName(c.Policy)}, traffic...)...)
	}
	tw.Flush()
}

// publishersTable shows the owned model's memory: one row per publisher
// data segment. The router's own figures (segment, chunk size, chunks,
// pages, bytes) are on every row; the publisher's reported accounting (in
// use, loans, history, outstanding, high water) on its first row, "?"
// until it reported. A dead publisher's segments (subscribers still map
// them) show "dead" and no accounting: it died with the publisher.
func publishersTable(w io.Writer, v *view) {
	tw := newTable(w)
	row(tw, "TOPIC", "PUB", "PID", "SEG", "CHUNK", "CHUNKS", "IN USE", "LOANS", "HISTORY", "OUT", "HIGH", "PAGES", "BYTES")
	prev := uint32(0)
	for _, s := range v.PublisherSegments {
		pages := bytesize(uint64(s.PageSize))
		if s.Hugepages {
			pages += " huge"
		}
		pid := strconv.Itoa(int(s.PID))
		use := []any{"?", "?", "?", "?", "?"}
		switch {
		case s.Dead:
			pid = "dead"
			use = []any{"-", "-", "-", "-", "-"}
		case s.PubID == prev:
			use = []any{"", "", "", "", ""}
		case s.Reported:
			m := s.Mem
			use = []any{m.InUse, m.Loans, m.History, m.Outstanding, m.HighWater}
		}
		prev = s.PubID
		cols := append([]any{s.Topic, s.PubID, pid, s.Index, bytesize(uint64(s.ChunkSize)), s.Count}, use...)
		row(tw, append(cols, pages, bytesize(s.Bytes))...)
	}
	tw.Flush()
}
