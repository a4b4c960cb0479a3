package roudi

import (
	"github.com/parallax-ipc/parallax/internal/wire"
	"github.com/parallax-ipc/parallax/roudi/internal/core"
)

// Service discovery watches: the core decides what changed (core/watch.go);
// this shell only encodes and queues. The pushes go through the watcher's
// bounded outgoing queue (server_outq.go), so a watcher that stops reading
// is cut like any client that does not drain its socket, and never stalls
// the router.

// watchAction sends one core.ServiceChanged or core.WatchSynced.
func (s *Server) watchAction(a core.Action) {
	switch a := a.(type) {
	case core.WatchSynced:
		if c := s.conns[a.Conn]; c != nil {
			s.push(c, &wire.ServicesSynced{})
		}
	case core.ServiceChanged:
		c := s.conns[a.Conn]
		if c == nil {
			return
		}
		for _, m := range serviceUpdates(a) {
			if s.conns[a.Conn] != c {
				return // cut while sending
			}
			s.push(c, m)
		}
	}
}

// serviceUpdates encodes a change as one ServiceUpdate, or several when the
// service has more than wire.MaxServiceEndpoints endpoints.
func serviceUpdates(a core.ServiceChanged) []*wire.ServiceUpdate {
	sv := &a.Service
	head := wire.ServiceDesc{
		Name: sv.Name, Kind: uint8(sv.Kind), Type: wire.TypeInfo(sv.Type),
		CanPublish: sv.CanPublish, CanSubscribe: sv.CanSubscribe, ResponseType: wire.TypeInfo(sv.ResponseType),
	}
	cur := &wire.ServiceUpdate{Change: uint8(a.Change), Service: head}
	out := []*wire.ServiceUpdate{cur}
	add := func(e core.Endpoint, sub bool) {
		if len(cur.Service.Publishers)+len(cur.Service.Subscribers) == wire.MaxServiceEndpoints {
			cur.More = true
			cur = &wire.ServiceUpdate{Change: uint8(a.Change), Service: head}
			out = append(out, cur)
		}
		d := wire.EndpointDesc{ID: e.ID, ClientID: uint16(e.Client), PID: e.PID, Process: clip(e.Process, wire.MaxNameLen),
			History: uint32(e.History)}
		if sub {
			d.Policy, d.Capacity = uint8(e.Policy), uint32(e.Capacity)
			cur.Service.Subscribers = append(cur.Service.Subscribers, d)
		} else {
			cur.Service.Publishers = append(cur.Service.Publishers, d)
		}
	}
	for _, e := range sv.Publishers {
		add(e, false)
	}
	for _, e := range sv.Subscribers {
		add(e, true)
	}
	return out
}
