package services

import (
	"fmt"
	"sync"

	"github.com/parallax-ipc/parallax"
	"github.com/parallax-ipc/parallax/internal/wire"
)

// stream is the state of one watch: the pushes of one control connection
// from its WatchServices on. The fields other than the channels are the
// dispatch goroutine's.
type stream struct {
	w       *Watcher
	conn    <-chan struct{} // closed when the control connection ends
	sent    bool            // WatchServices went out on conn: an unwatch is owed
	remove  func()          // unregisters push
	snap    map[key]Service // the snapshot being received
	synced  chan struct{}
	failed  chan struct{} // closed on a protocol error
	isSync  bool
	partial *Service // a service whose endpoints continue (More)
	change  uint8
	bad     bool // a protocol error was seen
	once    sync.Once
}

// stop unregisters the stream's handler (idempotent).
func (st *stream) stop() { st.once.Do(st.remove) }

// push runs on the connection's dispatch goroutine and never blocks. After
// a protocol error it ignores the rest of the connection's pushes.
func (st *stream) push(m wire.Message) {
	if st.bad {
		return
	}
	switch m := m.(type) {
	case *wire.ServiceUpdate:
		if err := st.update(m); err != nil {
			st.broken(err)
		}
	case *wire.ServicesSynced:
		if st.partial != nil {
			st.broken(fmt.Errorf("watch services: ServicesSynced within a continued service: %w", parallax.ErrProtocol))
			return
		}
		if st.isSync {
			return // the end of a snapshot another watch of this process asked for
		}
		st.isSync = true
		st.w.replace(st.snap)
		st.snap = nil
		close(st.synced)
	}
}

// broken records a protocol error: the watcher stops (the control
// connection is the process's: it stays).
func (st *stream) broken(err error) {
	st.bad = true
	st.w.fail(err)
	close(st.failed)
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
		// The snapshot, and changes the router sent for another watch of
		// this process on the same connection before it: applied in order,
		// they give the state at the end of the snapshot.
		if m.Change == wire.ChangeDisappeared {
			delete(st.snap, s.key())
		} else {
			st.snap[s.key()] = s
		}
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
