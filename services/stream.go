package services

import (
	"fmt"
	"os"

	"github.com/parallax-ipc/parallax"
	"github.com/parallax-ipc/parallax/internal/discovery"
	"github.com/parallax-ipc/parallax/internal/wire"
)

// stream is the state of one connection's pushes.
type stream struct {
	w       *Watcher
	c       *discovery.Client
	snap    map[key]Service // the snapshot being received
	synced  chan struct{}
	isSync  bool
	partial *Service // a service whose endpoints continue (More)
	change  uint8
	bad     bool // a protocol error was seen
}

// push runs on the client's dispatch goroutine and never blocks. After a
// protocol error it ignores the rest of the connection's pushes.
func (st *stream) push(m wire.Message, _ []*os.File) {
	if st.bad {
		return
	}
	switch m := m.(type) {
	case *wire.ServiceUpdate:
		if err := st.update(m); err != nil {
			st.broken(err)
		}
	case *wire.ServicesSynced:
		if st.isSync || st.partial != nil {
			st.broken(fmt.Errorf("watch services: unexpected ServicesSynced: %w", parallax.ErrProtocol))
			return
		}
		st.isSync = true
		st.w.replace(st.snap)
		st.snap = nil
		close(st.synced)
	}
}

// broken records a protocol error: the watcher stops.
func (st *stream) broken(err error) {
	st.bad = true
	st.w.fail(err)
	go st.c.Close() // Close must not run on the dispatch goroutine
}

func (st *stream) update(m *wire.ServiceUpdate) error {
	s := fromWire(&m.Service)
	if p := st.partial; p != nil {
		if p.Name != s.Name || st.change != m.Change {
			return fmt.Errorf("watch services: continuation of %q is %q: %w", p.Name, s.Name, parallax.ErrProtocol)
		}
		p.Publishers = append(p.Publishers, s.Publishers...)
		p.Subscribers = append(p.Subscribers, s.Subscribers...)
		s = *p
	}
	if m.More {
		st.partial, st.change = &s, m.Change
		return nil
	}
	st.partial = nil
	if !st.isSync {
		if m.Change != wire.ChangeAppeared {
			return fmt.Errorf("watch services: snapshot entry %q with change %d: %w", s.Name, m.Change, parallax.ErrProtocol)
		}
		st.snap[s.key()] = s
		return nil
	}
	st.w.apply(s, m.Change == wire.ChangeDisappeared)
	return nil
}

func fromWire(d *wire.ServiceDesc) Service {
	s := Service{Name: d.Name, Kind: Kind(d.Kind), Type: Type(d.Type), CanPublish: d.CanPublish, CanSubscribe: d.CanSubscribe,
		ResponseType: Type(d.ResponseType)}
	ep := func(e wire.EndpointDesc) Endpoint {
		return Endpoint{ID: e.ID, ClientID: e.ClientID, PID: e.PID, Process: e.Process,
			Policy: parallax.Policy(e.Policy), QueueCapacity: int(e.Capacity), History: int(e.History)}
	}
	for _, e := range d.Publishers {
		s.Publishers = append(s.Publishers, ep(e))
	}
	for _, e := range d.Subscribers {
		s.Subscribers = append(s.Subscribers, ep(e))
	}
	return s
}
