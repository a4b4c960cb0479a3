package wire

import (
	"math"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
)

// introspectSamples holds one populated instance of every introspection
// message; samples() appends them, so they get golden files, round trips and
// fuzz seeds like every other message.
func introspectSamples() []struct {
	name  string
	reqID uint32
	msg   Message
} {
	return []struct {
		name  string
		reqID uint32
		msg   Message
	}{
		{"get_router_info", 20, &GetRouterInfo{}},
		{"router_info", 20, &RouterInfo{Version: "0.1.0", PID: 100, Domain: "default", Socket: "/run/user/0/parallax/default.sock",
			UptimeMs: 61000, Monitor: "pidfd", Processes: 3, Topics: 2, Connections: 4, Reclaims: 1}},
		{"list_processes", 21, &ListProcesses{Offset: 64}},
		{"process_list", 21, &ProcessList{Processes: []ProcessStat{{ClientID: 1, PID: 4242, UID: 1000, GID: 1000, Name: "camera", Monitor: "pidfd", Publishers: 1}}, Next: 0}},
		{"list_topics", 22, &ListTopics{}},
		{"topic_list", 22, &TopicList{Topics: []TopicStat{{Name: "camera/front.raw", Type: TypeInfo{Name: "image.Frame", Size: 1 << 21, Align: 64},
			Publishers: 1, Subscribers: 2, Connections: 2, Published: 1000, Delivered: 1990, Dropped: 10, QueueDepth: 3,
			PublishRate: 30, DeliverRate: 59.5, DropRate: 0.5, QueueCapacity: 512}}, Next: 1}},
		{"list_connections", 23, &ListConnections{}},
		{"connection_list", 23, &ConnectionList{Connections: []ConnStat{{ConnID: 3, Topic: "camera/front.raw", PubID: 9, SubID: 11, PubPID: 4242, SubPID: 4243,
			Capacity: 256, Policy: PolicyBlockProducer, Reported: true, AgeMs: 420, Delivered: 1000, Dropped: 3, Returned: 990}}}},
	}
}

func TestIntrospectReplyTypes(t *testing.T) {
	t.Parallel()
	for _, req := range []Type{TypeGetRouterInfo, TypeListProcesses, TypeListTopics, TypeListConnections} {
		rep, ok := ReplyType(req)
		require.True(t, ok, "%s", req)
		require.Equal(t, req+1, rep)
		require.False(t, req.IsPush())
		require.GreaterOrEqual(t, req, TypeIntrospectFirst)
		require.LessOrEqual(t, rep, TypeIntrospectLast)
		_, ok = ReplyType(rep)
		require.False(t, ok, "%s is a reply, not a request", rep)
	}
}

func TestIntrospectRejects(t *testing.T) {
	t.Parallel()
	long := strings.Repeat("a", MaxNameLen+1)
	for name, m := range map[string]Message{
		"nan rate":             &TopicList{Topics: []TopicStat{{Name: "t", PublishRate: math.NaN()}}},
		"returned > delivered": &ConnectionList{Connections: []ConnStat{{Topic: "t", Delivered: 1, Returned: 2}}},
		"inf rate":             &TopicList{Topics: []TopicStat{{Name: "t", DropRate: math.Inf(1)}}},
		"bad topic":            &TopicList{Topics: []TopicStat{{Name: "a b"}}},
		"long name":            &ProcessList{Processes: []ProcessStat{{Name: long}}},
		"negative pid":         &ProcessList{Processes: []ProcessStat{{PID: -1}}},
		"too many":             &ConnectionList{Connections: make([]ConnStat, MaxIntrospectPage+1)},
		"bad policy":           &ConnectionList{Connections: []ConnStat{{Topic: "t", Policy: 9}}},
		"bad domain":           &RouterInfo{Domain: "../x"},
		"long monitor":         &RouterInfo{Monitor: long},
		"bad type align":       &TopicList{Topics: []TopicStat{{Name: "t", Type: TypeInfo{Align: 3}}}},
	} {
		_, err := Encode(1, m)
		require.ErrorIs(t, err, ErrInvalidArgument, name)
	}
}

// TestLargestIntrospectFit checks that full pages at their field limits fit
// one datagram.
func TestLargestIntrospectFit(t *testing.T) {
	t.Parallel()
	name := strings.Repeat("n", MaxNameLen)
	topics := make([]TopicStat, MaxIntrospectPage)
	conns := make([]ConnStat, MaxIntrospectPage)
	procs := make([]ProcessStat, MaxIntrospectPage)
	const u64, u32 = 1<<64 - 1, 1<<32 - 1
	for i := range topics {
		topics[i] = TopicStat{Name: name, Type: TypeInfo{Name: name, Size: u32, Align: MaxAlign}, Publishers: u32, Subscribers: u32, Connections: u32,
			Published: u64, Delivered: u64, Dropped: u64, QueueDepth: u64, PublishRate: math.MaxFloat64, DeliverRate: 1.5, DropRate: 1.5, QueueCapacity: u64}
		conns[i] = ConnStat{ConnID: u32, Topic: name, PubID: u32, SubID: u32, PubPID: 1<<31 - 1, SubPID: 1<<31 - 1, Capacity: u32,
			Policy: PolicyBlockProducer, Reported: true, AgeMs: u64, Delivered: u64, Dropped: u64, Returned: u64}
		procs[i] = ProcessStat{ClientID: 0xffff, PID: 1<<31 - 1, UID: u32, GID: u32, Name: name, Monitor: name, Publishers: u32, Subscribers: u32}
	}
	for _, m := range []Message{
		&TopicList{Topics: topics, Next: u32},
		&ConnectionList{Connections: conns, Next: u32},
		&ProcessList{Processes: procs, Next: u32},
		&RouterInfo{Version: name, PID: 1<<31 - 1, Domain: strings.Repeat("d", MaxDomainLen), Socket: name, Monitor: name, UptimeMs: u64},
	} {
		b, err := Encode(u32, m)
		require.NoError(t, err, "%s", m.MessageType())
		require.LessOrEqual(t, len(b), MaxMessageSize, "%s", m.MessageType())
		t.Logf("largest %s: %d bytes", m.MessageType(), len(b))
	}
}
