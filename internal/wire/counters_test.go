package wire

import (
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
)

// countersSamples holds one populated instance of every component-counter
// message; samples() appends them (golden files, round trips, fuzz seeds).
func countersSamples() []struct {
	name  string
	reqID uint32
	msg   Message
} {
	counters := []Counter{{"forwarded", 1500}, {"exported", 1000}, {"imported", 500}, {"dropped", 2}, {"reconnects", 1}}
	return []struct {
		name  string
		reqID uint32
		msg   Message
	}{
		{"report_counters", 31, &ReportCounters{Component: "gateway", Instance: "site-a", Counters: counters}},
		{"list_components", 25, &ListComponents{Offset: 16}},
		{"component_list", 25, &ComponentList{Components: []ComponentStat{
			{ClientID: 3, PID: 4244, Component: "gateway", Instance: "site-a", AgeMs: 250, Counters: counters},
			{ClientID: 5, PID: 4300, Component: "gateway", Instance: "site-b"},
		}, Next: 0}},
	}
}

func TestCountersTypes(t *testing.T) {
	t.Parallel()
	rep, ok := ReplyType(TypeReportCounters)
	require.True(t, ok)
	require.Equal(t, TypeAck, rep)
	require.GreaterOrEqual(t, TypeReportCounters, TypeReportFirst)
	require.LessOrEqual(t, TypeReportCounters, TypeReportLast)
	rep, ok = ReplyType(TypeListComponents)
	require.True(t, ok)
	require.Equal(t, TypeComponentList, rep)
	require.GreaterOrEqual(t, TypeListComponents, TypeIntrospectFirst)
	require.LessOrEqual(t, TypeComponentList, TypeIntrospectLast)
	_, ok = ReplyType(TypeComponentList)
	require.False(t, ok, "ComponentList is a reply")
	for _, typ := range []Type{TypeReportCounters, TypeListComponents, TypeComponentList} {
		require.False(t, typ.IsPush())
		require.True(t, typ.Known())
		require.Equal(t, typ, New(typ).MessageType())
	}
	require.Equal(t, "ReportCounters", TypeReportCounters.String())
}

func TestCountersRejects(t *testing.T) {
	t.Parallel()
	ok := []Counter{{"forwarded", 1}}
	long := strings.Repeat("c", MaxCounterNameLen+1)
	many := make([]Counter, MaxCounters+1)
	for i := range many {
		many[i] = Counter{Name: "c" + strings.Repeat("x", i)}
	}
	cases := []struct {
		name  string
		msg   Message
		field string
	}{
		{"empty component", &ReportCounters{Instance: "a", Counters: ok}, "ReportCounters.Component"},
		{"long component", &ReportCounters{Component: long, Instance: "a"}, "ReportCounters.Component"},
		{"component with space", &ReportCounters{Component: "a b", Instance: "a"}, "ReportCounters.Component"},
		{"empty instance", &ReportCounters{Component: "gateway"}, "ReportCounters.Instance"},
		{"long instance", &ReportCounters{Component: "gateway", Instance: strings.Repeat("i", MaxNameLen+1)}, "ReportCounters.Instance"},
		{"instance with space", &ReportCounters{Component: "gateway", Instance: "a b"}, "ReportCounters.Instance"},
		{"instance with control", &ReportCounters{Component: "gateway", Instance: "a\x7f"}, "ReportCounters.Instance"},
		{"instance not utf-8", &ReportCounters{Component: "gateway", Instance: "a\xff"}, "ReportCounters.Instance"},
		{"too many counters", &ReportCounters{Component: "gateway", Instance: "a", Counters: many}, "ReportCounters.Counters"},
		{"empty counter name", &ReportCounters{Component: "gateway", Instance: "a", Counters: []Counter{{"x", 1}, {"", 2}}}, "ReportCounters.Counters[1].Name"},
		{"long counter name", &ReportCounters{Component: "gateway", Instance: "a", Counters: []Counter{{long, 2}}}, "ReportCounters.Counters[0].Name"},
		{"repeated counter", &ReportCounters{Component: "gateway", Instance: "a", Counters: []Counter{{"x", 1}, {"y", 1}, {"x", 2}}}, "ReportCounters.Counters[2].Name"},
		{"page too long", &ComponentList{Components: make([]ComponentStat, MaxComponentPage+1)}, "ComponentList.Components"},
		{"negative pid", &ComponentList{Components: []ComponentStat{{PID: -1, Component: "g", Instance: "i"}}}, "ComponentList.Components[0].PID"},
		{"list bad counter", &ComponentList{Components: []ComponentStat{{Component: "g", Instance: "i", Counters: []Counter{{"a b", 1}}}}}, "ComponentList.Components[0].Counters[0].Name"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			_, err := Encode(1, c.msg)
			require.ErrorIs(t, err, ErrInvalidArgument)
			require.Contains(t, err.Error(), c.field)
		})
	}
	require.NoError(t, ValidateInstance("gw-1.site/a:b"))
}

// TestLargestComponentListFits checks that a full page of reports at their
// limits fits one datagram.
func TestLargestComponentListFits(t *testing.T) {
	t.Parallel()
	counters := make([]Counter, MaxCounters)
	for i := range counters {
		name := []byte(strings.Repeat("n", MaxCounterNameLen))
		name[0], name[1] = 'a'+byte(i%26), 'a'+byte(i/26)
		counters[i] = Counter{Name: string(name), Value: 1<<64 - 1}
	}
	stat := ComponentStat{ClientID: 0xffff, PID: 1<<31 - 1, Component: strings.Repeat("c", MaxCounterNameLen),
		Instance: strings.Repeat("i", MaxNameLen), AgeMs: 1<<64 - 1, Counters: counters}
	page := make([]ComponentStat, MaxComponentPage)
	for i := range page {
		page[i] = stat
	}
	for _, m := range []Message{
		&ComponentList{Components: page, Next: 1<<32 - 1},
		&ReportCounters{Component: stat.Component, Instance: stat.Instance, Counters: counters},
	} {
		b, err := Encode(1<<32-1, m)
		require.NoError(t, err, "%s", m.MessageType())
		require.LessOrEqual(t, len(b), MaxMessageSize, "%s", m.MessageType())
		t.Logf("largest %s: %d bytes", m.MessageType(), len(b))
	}
}
