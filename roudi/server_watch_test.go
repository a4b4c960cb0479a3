package roudi

import (
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/parallax-ipc/parallax/internal/wire"
	"github.com/parallax-ipc/parallax/roudi/internal/core"
)

// A service with more endpoints than one message holds is split into
// valid updates, all but the last marked More, that fit a datagram.
func TestServiceUpdatesSplit(t *testing.T) {
	t.Parallel()
	long := strings.Repeat("p", 300) // clipped to wire.MaxNameLen
	a := core.ServiceChanged{Conn: 1, Change: core.ServiceUpdated, Service: core.Service{Name: "big", Kind: core.ServiceTopic,
		Type: core.TypeInfo{Name: "T", Size: 8, Align: 8}, CanSubscribe: true}}
	for i := range 100 {
		a.Service.Publishers = append(a.Service.Publishers, core.Endpoint{ID: uint32(i + 1), Client: 1, PID: 10, Process: long, History: 1})
	}
	for i := range 200 {
		a.Service.Subscribers = append(a.Service.Subscribers, core.Endpoint{ID: uint32(i + 1), Client: 2, PID: 20, Process: long,
			Policy: core.BlockProducer, Capacity: 64})
	}
	ms := serviceUpdates(a)
	require.Len(t, ms, 3) // 300 endpoints, 128 per message
	var pubs, subs int
	for i, m := range ms {
		require.Equal(t, i < len(ms)-1, m.More, "update %d", i)
		require.Equal(t, "big", m.Service.Name)
		require.Equal(t, wire.ChangeUpdated, m.Change)
		b, err := wire.Encode(0, m)
		require.NoError(t, err, "update %d", i)
		require.LessOrEqual(t, len(b), wire.MaxMessageSize)
		pubs += len(m.Service.Publishers)
		subs += len(m.Service.Subscribers)
	}
	require.Equal(t, 100, pubs)
	require.Equal(t, 200, subs)
	require.Len(t, ms[0].Service.Publishers[0].Process, wire.MaxNameLen)
}
