package roudi_test

import (
	"bytes"
	"context"
	"fmt"
	"net/http/httptest"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"github.com/vmihailenco/msgpack/v5"

	"github.com/parallax-ipc/parallax"
	"github.com/parallax-ipc/parallax/internal/discovery"
	"github.com/parallax-ipc/parallax/internal/routertest"
	"github.com/parallax-ipc/parallax/internal/wire"
	"github.com/parallax-ipc/parallax/roudi"
)

func report(ctx context.Context, c *discovery.Client, instance string, counters ...wire.Counter) error {
	m, _, err := c.Request(ctx, &wire.ReportCounters{Component: "gateway", Instance: instance, Counters: counters}, nil)
	if err == nil {
		if _, ok := m.(*wire.Ack); !ok {
			return fmt.Errorf("ReportCounters answered by %T, want *wire.Ack", m)
		}
	}
	return err
}

// components lists the router's component reports over the socket, page by
// page.
func components(ctx context.Context, t *testing.T, c *discovery.Client) []wire.ComponentStat {
	t.Helper()
	var all []wire.ComponentStat
	for off := uint32(0); ; {
		m, _, err := c.Request(ctx, &wire.ListComponents{Offset: off}, nil)
		require.NoError(t, err)
		l := m.(*wire.ComponentList)
		require.LessOrEqual(t, len(l.Components), wire.MaxComponentPage)
		all = append(all, l.Components...)
		if l.Next == 0 {
			return all
		}
		off = l.Next
	}
}

// waitIntrospect polls the server's introspection until cond holds or ctx
// ends.
func waitIntrospect(ctx context.Context, t *testing.T, srv *roudi.Server, what string, cond func(*roudi.Introspection) bool) {
	t.Helper()
	tick := time.NewTicker(5 * time.Millisecond)
	defer tick.Stop()
	for {
		in, err := srv.Introspect(ctx)
		require.NoError(t, err)
		if cond(in) {
			return
		}
		select {
		case <-ctx.Done():
			t.Fatalf("timed out waiting for %s: %+v", what, in.Components)
		case <-tick.C:
		}
	}
}

// TestComponentReports: a report is stored, replaced by the next one of the
// same instance, listed (introspection, socket, metrics) and forgotten when
// its connection ends.
func TestComponentReports(t *testing.T) {
	t.Parallel()
	srv := routertest.Start(t, "")
	ctx := ctx10s(t)
	gw, err := discovery.Dial(ctx, discovery.DialOptions{Socket: srv.SocketPath(), Name: "gw"})
	require.NoError(t, err)
	defer gw.Close()
	tool, err := discovery.Dial(ctx, discovery.DialOptions{Socket: srv.SocketPath(), Name: "tool"})
	require.NoError(t, err)
	defer tool.Close()

	require.Empty(t, components(ctx, t, tool))
	require.NoError(t, report(ctx, gw, "site-b", wire.Counter{Name: "forwarded", Value: 5}, wire.Counter{Name: "dropped", Value: 1}))
	require.NoError(t, report(ctx, gw, "site-a", wire.Counter{Name: "forwarded", Value: 1}))
	require.NoError(t, report(ctx, gw, "site-b", wire.Counter{Name: "forwarded", Value: 9}))

	list := components(ctx, t, tool)
	require.Len(t, list, 2)
	id := gw.Welcome().ClientID
	require.Equal(t, "site-a", list[0].Instance, "sorted by instance")
	b := list[1]
	require.Equal(t, "gateway", b.Component)
	require.Equal(t, "site-b", b.Instance)
	require.Equal(t, id, b.ClientID)
	require.EqualValues(t, os.Getpid(), b.PID)
	require.Equal(t, []wire.Counter{{Name: "forwarded", Value: 9}}, b.Counters, "replaced, not merged")
	require.Less(t, b.AgeMs, uint64(10_000))

	in, err := srv.Introspect(ctx)
	require.NoError(t, err)
	require.Equal(t, zeroAge(list), zeroAge(wireComponents(in.Components)))

	hs := httptest.NewServer(srv.MetricsHandler())
	defer hs.Close()
	body := scrape(t, hs.URL)
	for _, want := range []string{
		fmt.Sprintf(`parallax_component_counter_total{client="%d",component="gateway",counter="forwarded",instance="site-b"} 9`, id),
		fmt.Sprintf(`parallax_component_counter_total{client="%d",component="gateway",counter="forwarded",instance="site-a"} 1`, id),
		fmt.Sprintf(`parallax_component_report_age_seconds{client="%d",component="gateway",instance="site-b"}`, id),
	} {
		require.Contains(t, body, want)
	}
	require.NotContains(t, body, `counter="dropped"`, "the replaced report's counters are gone")

	require.NoError(t, gw.Close())
	waitIntrospect(ctx, t, srv, "the closed connection's reports to go", func(in *roudi.Introspection) bool { return len(in.Components) == 0 })
	require.Empty(t, components(ctx, t, tool))
	require.NotContains(t, scrape(t, hs.URL), "parallax_component_counter_total{")
}

func zeroAge(cs []wire.ComponentStat) []wire.ComponentStat {
	out := make([]wire.ComponentStat, len(cs))
	for i, c := range cs {
		c.AgeMs = 0
		out[i] = c
	}
	return out
}

// wireComponents is the public ComponentStat in its wire form.
func wireComponents(cs []roudi.ComponentStat) []wire.ComponentStat {
	var out []wire.ComponentStat
	for _, c := range cs {
		w := wire.ComponentStat{ClientID: c.ClientID, PID: c.PID, Component: c.Component, Instance: c.Instance, AgeMs: c.AgeMs}
		for _, ctr := range c.Counters {
			w.Counters = append(w.Counters, wire.Counter(ctr))
		}
		out = append(out, w)
	}
	return out
}

// TestComponentReportsLimitAndPaging: a connection keeps at most
// MaxComponentsPerConn instances (re-reporting one of them still works);
// lists longer than a page are paged.
func TestComponentReportsLimitAndPaging(t *testing.T) {
	t.Parallel()
	srv := routertest.Start(t, "")
	ctx := ctx10s(t)
	dial := func() *discovery.Client {
		c, err := discovery.Dial(ctx, discovery.DialOptions{Socket: srv.SocketPath()})
		require.NoError(t, err)
		t.Cleanup(func() { c.Close() })
		return c
	}
	a, b := dial(), dial()
	for i := range wire.MaxComponentsPerConn {
		require.NoError(t, report(ctx, a, fmt.Sprintf("a%02d", i), wire.Counter{Name: "n", Value: uint64(i)}))
	}
	err := report(ctx, a, "one-too-many")
	require.ErrorIs(t, err, parallax.ErrLimit)
	require.Contains(t, err.Error(), `"one-too-many"`)
	require.NoError(t, report(ctx, a, "a00", wire.Counter{Name: "n", Value: 100}), "replacing a recorded instance is within the limit")
	for i := range 4 {
		require.NoError(t, report(ctx, b, fmt.Sprintf("b%02d", i)))
	}
	list := components(ctx, t, b)
	require.Len(t, list, wire.MaxComponentsPerConn+4)
	require.Equal(t, "a00", list[0].Instance)
	require.Equal(t, []wire.Counter{{Name: "n", Value: 100}}, list[0].Counters)
	require.Equal(t, "b03", list[len(list)-1].Instance)
}

// TestComponentReportMalformed: a report whose fields break the limits is
// refused with a protocol error naming the field, and the connection ends
// (as for any malformed message); the router keeps serving.
func TestComponentReportMalformed(t *testing.T) {
	t.Parallel()
	srv := routertest.Start(t, "")
	for _, c := range []struct {
		name  string
		msg   *wire.ReportCounters
		field string
	}{
		{"empty counter name", &wire.ReportCounters{Component: "gateway", Instance: "x", Counters: []wire.Counter{{Name: "ok"}, {Name: ""}}}, "ReportCounters.Counters[1].Name"},
		{"long instance", &wire.ReportCounters{Component: "gateway", Instance: strings.Repeat("i", wire.MaxNameLen+1)}, "ReportCounters.Instance"},
		{"too many counters", &wire.ReportCounters{Component: "gateway", Instance: "x", Counters: manyCounters(wire.MaxCounters + 1)}, "ReportCounters.Counters"},
		{"empty component", &wire.ReportCounters{Instance: "x"}, "ReportCounters.Component"},
	} {
		t.Run(c.name, func(t *testing.T) {
			fc := rawConn(t, srv)
			_, err := fc.UnixConn().Write(encodeUnchecked(t, 7, c.msg))
			require.NoError(t, err)
			env, _, err := fc.Recv()
			require.NoError(t, err)
			e, ok := env.Msg.(*wire.Error)
			require.True(t, ok, "reply %T", env.Msg)
			require.Equal(t, wire.CodeProtocol, e.Code)
			require.Contains(t, e.Message, c.field)
			_, _, err = fc.Recv()
			require.Error(t, err, "the router ends the connection")
		})
	}
	in, err := srv.Introspect(ctx10s(t))
	require.NoError(t, err)
	require.Empty(t, in.Components)
}

func manyCounters(n int) []wire.Counter {
	cs := make([]wire.Counter, n)
	for i := range cs {
		cs[i] = wire.Counter{Name: fmt.Sprintf("c%d", i)}
	}
	return cs
}

// encodeUnchecked encodes m in the canonical envelope without validating
// it, as a broken or hostile client could.
func encodeUnchecked(t *testing.T, reqID uint32, m wire.Message) []byte {
	t.Helper()
	var buf bytes.Buffer
	enc := msgpack.NewEncoder(&buf)
	enc.UseArrayEncodedStructs(true)
	enc.UseCompactInts(true)
	require.NoError(t, enc.EncodeArrayLen(3))
	require.NoError(t, enc.EncodeUint(uint64(m.MessageType())))
	require.NoError(t, enc.EncodeUint(uint64(reqID)))
	require.NoError(t, enc.Encode(m))
	return buf.Bytes()
}
