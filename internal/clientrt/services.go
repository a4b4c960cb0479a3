package clientrt

import (
	"context"
	"fmt"
	"os"

	"github.com/parallax-ipc/parallax"
	"github.com/parallax-ipc/parallax/internal/discovery"
	"github.com/parallax-ipc/parallax/internal/wire"
)

// Service discovery pushes.
//
// A services.Watcher uses the process's runtime like any endpoint: it
// registers a handler for the router's service pushes (wire.ServiceUpdate,
// wire.ServicesSynced) and sends its WatchServices request on the runtime's
// control connection. The router keeps one watch per control connection, so
// every handler sees the pushes of every watch this process started on it
// (each WatchServices replays the whole snapshot). After a router restart
// the resumed connection is a new one: a watcher re-sends WatchServices.
//
// The router counts the WatchServices of a connection; a watcher that ends
// sends UnwatchServices on the connection its WatchServices went on, and
// only there (UnwatchServices): a watch made on a connection that ended
// ended with it, and an unwatch sent on its successor would end another
// watcher's watch. A closed watcher never re-sends WatchServices, so a
// resume does not bring its watch back.

// ServicesHandler takes one service push; it runs on the control
// connection's dispatch goroutine and must not block.
type ServicesHandler func(m wire.Message)

// OnServices registers h for the service pushes the router sends on this
// runtime's control connection, also after a resume. remove unregisters it.
func (rt *Runtime) OnServices(h ServicesHandler) (remove func()) {
	rt.mu.Lock()
	defer rt.mu.Unlock()
	rt.svcSeq++
	id := rt.svcSeq
	if rt.svc == nil {
		rt.svc = map[uint64]ServicesHandler{}
	}
	rt.svc[id] = h
	return func() {
		rt.mu.Lock()
		defer rt.mu.Unlock()
		delete(rt.svc, id)
	}
}

// StartWatch sends WatchServices on the current control connection and
// returns its call (the caller waits for the Ack) and that connection's
// Done channel, which names it for [Runtime.UnwatchServices]. Once it
// returned without error the request is written: the router serves it
// before anything sent after it on that connection.
func (rt *Runtime) StartWatch() (call *discovery.Call, conn <-chan struct{}, err error) {
	cur := rt.client.cur.Load()
	call, err = cur.Start(&wire.WatchServices{}, nil)
	return call, cur.Done(), err
}

// errConnChanged: the connection a watch was made on is no longer the
// current one; the watch ended with it.
var errConnChanged = fmt.Errorf("the control connection changed: %w", parallax.ErrDaemonUnavailable)

// UnwatchServices ends one watch made by [Runtime.StartWatch] on conn and
// waits for the router's Ack until ctx ends. It sends nothing when conn is
// no longer the current control connection (the watch ended with it).
func (rt *Runtime) UnwatchServices(ctx context.Context, conn <-chan struct{}) error {
	cur := rt.client.cur.Load()
	if cur.Done() != conn {
		return fmt.Errorf("unwatch services: %w", errConnChanged)
	}
	select {
	case <-conn:
		return fmt.Errorf("unwatch services: %w", errConnChanged)
	default:
	}
	if _, _, err := cur.Request(ctx, &wire.UnwatchServices{}, nil); err != nil {
		return fmt.Errorf("unwatch services: %w", err)
	}
	return nil
}

// onServices hands a service push to every registered handler.
func (rt *Runtime) onServices(m wire.Message, files []*os.File) {
	closeAll(files)
	rt.mu.Lock()
	hs := make([]ServicesHandler, 0, len(rt.svc))
	for _, h := range rt.svc {
		hs = append(hs, h)
	}
	rt.mu.Unlock()
	for _, h := range hs {
		h(m)
	}
}

// Err returns nil while the runtime's current control connection is up,
// else why it ended (a resume after a router restart makes it nil again).
func (rt *Runtime) Err() error { return rt.client.Err() }

// Abandoned reports whether the runtime stopped reconnecting: the router
// that came back did not take its endpoints (or it was torn down). New work
// needs a new runtime from [Acquire].
func (rt *Runtime) Abandoned() bool { return rt.rc.abandoned.Load() }
