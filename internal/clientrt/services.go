package clientrt

import (
	"os"

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
