package wire

import (
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
)

func watchSamples() []struct {
	name  string
	reqID uint32
	msg   Message
} {
	return []struct {
		name  string
		reqID uint32
		msg   Message
	}{
		{"watch_services", 40, &WatchServices{}},
		{"service_update", 0, &ServiceUpdate{Change: ChangeUpdated, More: true, Service: ServiceDesc{
			Name: "camera/front.raw", Kind: ServiceTopic, Type: TypeInfo{Name: "image.Frame", Size: 1 << 21, Align: 64},
			CanPublish: true, CanSubscribe: true,
			Publishers:  []EndpointDesc{{ID: 9, ClientID: 2, PID: 4242, Process: "camera", History: 2}},
			Subscribers: []EndpointDesc{{ID: 11, ClientID: 3, PID: 4243, Process: "viewer", Policy: PolicyBlockProducer, Capacity: 256, History: 1}},
		}}},
		{"services_synced", 0, &ServicesSynced{}},
		{"unwatch_services", 41, &UnwatchServices{}},
	}
}

// TestServiceUpdateFits: a ServiceUpdate at every limit still fits one
// datagram.
func TestServiceUpdateFits(t *testing.T) {
	t.Parallel()
	name := strings.Repeat("n", MaxNameLen)
	ep := EndpointDesc{ID: 1<<32 - 1, ClientID: 0xffff, PID: 1<<31 - 1, Process: name, Policy: PolicyBlockProducer, Capacity: MaxQueueCapacity, History: MaxHistory}
	m := &ServiceUpdate{Change: ChangeUpdated, More: true, Service: ServiceDesc{Name: name, Kind: ServiceTopic,
		Type: TypeInfo{Name: name, Size: 1<<32 - 1, Align: MaxAlign}, CanPublish: true, CanSubscribe: true}}
	for range MaxServiceEndpoints {
		m.Service.Subscribers = append(m.Service.Subscribers, ep)
	}
	b, err := Encode(0, m)
	require.NoError(t, err)
	require.LessOrEqual(t, len(b), MaxMessageSize)
	t.Logf("largest ServiceUpdate: %d bytes", len(b))
}

// TestServiceUpdateRejects: every field a router could get wrong is
// checked on decode, with an error naming it.
func TestServiceUpdateRejects(t *testing.T) {
	t.Parallel()
	good := func() *ServiceUpdate {
		return &ServiceUpdate{Change: ChangeAppeared, Service: ServiceDesc{Name: "frames", Kind: ServiceTopic, Type: TypeInfo{Name: "F", Size: 8, Align: 8},
			Publishers:  []EndpointDesc{{ID: 1, ClientID: 1, PID: 10}},
			Subscribers: []EndpointDesc{{ID: 1, ClientID: 2, PID: 20, Capacity: 16}}}}
	}
	require.NoError(t, good().Validate())
	cases := []struct {
		name string
		mod  func(*ServiceUpdate)
		want string
	}{
		{"change 0", func(m *ServiceUpdate) { m.Change = 0 }, "Change"},
		{"change 4", func(m *ServiceUpdate) { m.Change = 4 }, "Change"},
		{"unknown kind", func(m *ServiceUpdate) { m.Service.Kind = 4 }, "Service.Kind"},
		{"response type on a topic", func(m *ServiceUpdate) { m.Service.ResponseType = TypeInfo{Name: "R"} }, "Service.ResponseType"},
		{"bad name", func(m *ServiceUpdate) { m.Service.Name = "a b" }, "Service.Name"},
		{"bad align", func(m *ServiceUpdate) { m.Service.Type.Align = 3 }, "Type.Align"},
		{"too many endpoints", func(m *ServiceUpdate) {
			m.Service.Publishers = make([]EndpointDesc, MaxServiceEndpoints)
			for i := range m.Service.Publishers {
				m.Service.Publishers[i] = EndpointDesc{ID: 1, ClientID: 1}
			}
		}, "endpoints"},
		{"disappeared with endpoints", func(m *ServiceUpdate) { m.Change = ChangeDisappeared }, "disappeared"},
		{"publisher id 0", func(m *ServiceUpdate) { m.Service.Publishers[0].ID = 0 }, "Publishers[0].ID"},
		{"client id 0", func(m *ServiceUpdate) { m.Service.Subscribers[0].ClientID = 0 }, "Subscribers[0].ClientID"},
		{"negative pid", func(m *ServiceUpdate) { m.Service.Publishers[0].PID = -1 }, "PID"},
		{"publisher with capacity", func(m *ServiceUpdate) { m.Service.Publishers[0].Capacity = 4 }, "a publisher"},
		{"subscriber policy", func(m *ServiceUpdate) { m.Service.Subscribers[0].Policy = 7 }, "Subscribers[0].Policy"},
		{"subscriber capacity 0", func(m *ServiceUpdate) { m.Service.Subscribers[0].Capacity = 0 }, "Subscribers[0].Capacity"},
		{"history", func(m *ServiceUpdate) { m.Service.Subscribers[0].History = MaxHistory + 1 }, "History"},
		{"process name", func(m *ServiceUpdate) { m.Service.Publishers[0].Process = strings.Repeat("p", MaxNameLen+1) }, "Process"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			m := good()
			c.mod(m)
			_, err := Decode(mustEncodeUnchecked(t, 0, m))
			require.ErrorContains(t, err, c.want)
			require.ErrorIs(t, err, ErrInvalidArgument)
		})
	}
}
