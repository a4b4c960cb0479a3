package services

import (
	"context"
	"errors"
	"fmt"
	"os"
	"slices"
	"sync"
	"time"

	"github.com/parallax-ipc/parallax"
	"github.com/parallax-ipc/parallax/internal/clientrt"
)

// Options selects the router. The zero value means the default domain's
// router (PARALLAX_SOCKET and PARALLAX_DOMAIN apply).
type Options struct {
	// Socket is the router's socket path; "" derives it from Domain.
	Socket string
	// Domain names the router instance; "" means the default domain.
	Domain string
	// Name is this process's name as the router shows it; "" means the
	// base name of the executable.
	Name string
}

// Reconnection backoff after the router went away.
const (
	minBackoff = 20 * time.Millisecond
	maxBackoff = 500 * time.Millisecond
)

// unwatchTimeout bounds the wait for the router's answer to the unwatch a
// closing Watcher sends.
const unwatchTimeout = 2 * time.Second

// A Watcher follows the router's services. It uses the process's one
// control connection to the router (the client runtime that publishers and
// subscribers share) and two goroutines (one follows the connection across
// router restarts, one delivers events), which exit when the context given
// to [Watch] ends or [Watcher.Close] is called.
//
// Use [Watch]; the zero value is invalid. A Watcher must not be copied;
// its methods are safe for concurrent use.
type Watcher struct {
	opts   clientrt.Options
	ctx    context.Context
	cancel context.CancelFunc
	events chan Event
	wake   chan struct{} // buffered(1): dirty is non-empty
	done   chan struct{} // closed when both goroutines exited

	mu    sync.Mutex // guards the fields below
	cur   map[key]Service
	seen  map[key]Service // as last delivered
	dirty []key           // services to deliver, in order of change
	isDir map[key]bool
	err   error // why the watcher stopped (set once)

	wg        sync.WaitGroup
	closeOnce sync.Once
}

// Watch connects to the router (or joins this process's connection to it),
// takes the snapshot of its services and returns a Watcher whose
// [Watcher.Events] starts with them. It fails with an error wrapping
// [parallax.ErrDaemonUnavailable] when no router runs. The watcher runs
// until ctx ends or Close is called; it survives router restarts.
func Watch(ctx context.Context, opts Options) (*Watcher, error) {
	wctx, cancel := context.WithCancel(ctx)
	w := &Watcher{
		opts:   clientrt.Options{Socket: opts.Socket, Domain: opts.Domain, Name: opts.Name},
		ctx:    wctx,
		cancel: cancel,
		events: make(chan Event),
		wake:   make(chan struct{}, 1),
		done:   make(chan struct{}),
		cur:    map[key]Service{},
		seen:   map[key]Service{},
		isDir:  map[key]bool{},
	}
	var st *stream
	var attemptErr error
	// A watch that finds the control connection dead (the router went
	// away and this process had not noticed yet) is tried once more on a
	// fresh runtime, as endpoints are.
	rt, err := clientrt.AcquireDo(wctx, w.opts, func(rt *clientrt.Runtime) error {
		var err error
		st, err = w.watch(rt)
		if err == nil {
			err = w.synced(st)
		}
		if err != nil {
			w.end(rt, st)
		}
		attemptErr = err
		return err
	})
	if err != nil {
		cancel()
		if err != attemptErr { // Acquire failed: say what for
			err = fmt.Errorf("watch services: %w", err)
		}
		return nil, err
	}
	w.wg.Add(2)
	go w.run(rt, st)
	go w.deliver()
	go func() {
		w.wg.Wait()
		close(w.done)
	}()
	return w, nil
}

// watch registers a stream for rt's service pushes and sends WatchServices
// on rt's current control connection; the stream ends with that connection.
// The stream returned, also with an error, is to be ended with [Watcher.end].
func (w *Watcher) watch(rt *clientrt.Runtime) (*stream, error) {
	st := &stream{w: w, conn: rt.Done(), snap: map[key]Service{}, synced: make(chan struct{}), failed: make(chan struct{})}
	st.remove = rt.OnServices(st.push)
	call, conn, err := rt.StartWatch()
	if err == nil {
		st.conn, st.sent = conn, true
		_, _, err = call.Wait(w.ctx)
	}
	if err != nil {
		return st, w.protoErr(fmt.Errorf("watch services: %w", err))
	}
	return st, nil
}

// end stops st and, when its WatchServices went out on a connection that
// is still up, tells the router the watch ended (waiting unwatchTimeout at
// most: a router that went away took the watch with it).
func (w *Watcher) end(rt *clientrt.Runtime, st *stream) {
	st.stop()
	if !st.sent {
		return
	}
	st.sent = false
	ctx, cancel := context.WithTimeout(context.Background(), unwatchTimeout)
	defer cancel()
	_ = rt.UnwatchServices(ctx, st.conn) // best effort: the watch ends with the connection anyway
}

// synced waits until st's snapshot is applied.
func (w *Watcher) synced(st *stream) error {
	select {
	case <-st.synced:
		return nil
	case <-st.failed:
		return w.protoErr(errors.New("watch services: stream failed"))
	case <-st.conn:
		return w.protoErr(fmt.Errorf("watch services: connection to the router ended: %w", parallax.ErrDaemonUnavailable))
	case <-w.ctx.Done():
		return fmt.Errorf("watch services: %w", w.ctx.Err())
	}
}

// protoErr returns the protocol error the watcher recorded, else err.
func (w *Watcher) protoErr(err error) error {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.err != nil {
		return w.err
	}
	return err
}

// run follows the router: when the control connection ends, it watches
// again once the runtime resumed with a restarted router, or on a new
// runtime when the old one gave up.
func (w *Watcher) run(rt *clientrt.Runtime, st *stream) {
	defer w.wg.Done()
	defer func() {
		if st != nil {
			w.end(rt, st)
		}
		rt.Release()
	}()
	for {
		select {
		case <-w.ctx.Done():
			return
		case <-st.failed:
			w.cancel() // the router sent something invalid: stop
			return
		case <-st.conn:
		}
		w.end(rt, st) // the connection ended: nothing is sent
		if rt, st = w.rewatch(rt); st == nil {
			w.cancel() // ended, or the router sent something invalid: stop
			return
		}
	}
}

// rewatch waits, with backoff, until a router serves the watch again: on
// rt once it resumed, else on a new runtime. It returns the runtime it
// holds and nil when the watcher ends or a router broke the protocol.
func (w *Watcher) rewatch(rt *clientrt.Runtime) (*clientrt.Runtime, *stream) {
	backoff := minBackoff
	for {
		w.mu.Lock()
		perr := w.err
		w.mu.Unlock()
		if perr != nil {
			return rt, nil
		}
		t := time.NewTimer(backoff)
		select {
		case <-w.ctx.Done():
			t.Stop()
			return rt, nil
		case <-t.C:
		}
		backoff = min(2*backoff, maxBackoff)
		if rt.Err() != nil {
			if !rt.Abandoned() {
				continue // still reconnecting
			}
			nrt, err := clientrt.Acquire(w.ctx, w.opts)
			if err != nil {
				continue
			}
			rt.Release()
			rt = nrt
		}
		st, err := w.watch(rt)
		if err == nil {
			err = w.synced(st)
		}
		if err == nil {
			return rt, st
		}
		w.end(rt, st)
	}
}

// replace installs a new snapshot: every service in the old or the new one
// is due for delivery.
func (w *Watcher) replace(snap map[key]Service) {
	w.mu.Lock()
	old := w.cur
	w.cur = snap
	names := make([]key, 0, len(snap)+len(old))
	for n := range snap {
		names = append(names, n)
	}
	for n := range old {
		if _, ok := snap[n]; !ok {
			names = append(names, n)
		}
	}
	slices.SortFunc(names, compareKeys)
	for _, n := range names {
		w.markLocked(n)
	}
	w.mu.Unlock()
	w.signal()
}

// apply records one change.
func (w *Watcher) apply(s Service, gone bool) {
	w.mu.Lock()
	if gone {
		delete(w.cur, s.key())
	} else {
		w.cur[s.key()] = s
	}
	w.markLocked(s.key())
	w.mu.Unlock()
	w.signal()
}

func (w *Watcher) markLocked(name key) {
	if !w.isDir[name] {
		w.isDir[name] = true
		w.dirty = append(w.dirty, name)
	}
}

func (w *Watcher) signal() {
	select {
	case w.wake <- struct{}{}:
	default:
	}
}

func (w *Watcher) fail(err error) {
	w.mu.Lock()
	if w.err == nil {
		w.err = err
	}
	w.mu.Unlock()
}

// deliver sends the pending changes on w.events, one per dirty service,
// comparing the service's state now with what it delivered last.
func (w *Watcher) deliver() {
	defer w.wg.Done()
	defer close(w.events)
	for {
		ev, ok := w.next()
		if !ok {
			select {
			case <-w.wake:
				continue
			case <-w.ctx.Done():
				return
			}
		}
		select {
		case w.events <- ev:
		case <-w.ctx.Done():
			return
		}
	}
}

// next takes the next event off the dirty list (false when there is none)
// and records it as delivered.
func (w *Watcher) next() (Event, bool) {
	w.mu.Lock()
	defer w.mu.Unlock()
	for len(w.dirty) > 0 {
		name := w.dirty[0]
		w.dirty[0] = key{}
		w.dirty = w.dirty[1:]
		delete(w.isDir, name)
		cur, has := w.cur[name]
		prev, had := w.seen[name]
		var ev Event
		switch {
		case has && !had:
			ev = Event{Kind: Appeared, Service: cur.clone()}
		case !has && had:
			ev = Event{Kind: Disappeared, Service: Service{Name: name.name, Kind: prev.Kind, Type: prev.Type,
				ResponseType: prev.ResponseType, CanPublish: prev.CanPublish, CanSubscribe: prev.CanSubscribe}}
		case has && !cur.Equal(prev):
			ev = Event{Kind: Changed, Service: cur.clone()}
		default:
			continue
		}
		if has {
			w.seen[name] = cur
		} else {
			delete(w.seen, name)
		}
		if len(w.dirty) == 0 {
			w.dirty = nil // let the backing array go
		}
		return ev, true
	}
	return Event{}, false
}

// Events returns the channel of changes. It starts with one [Appeared]
// event per service that existed when the watch started, then delivers
// changes in the order the router reported them (one event per service
// however many changes it went through since it was last delivered). It
// is closed when the watcher ends; [Watcher.Err] then says why.
func (w *Watcher) Events() <-chan Event { return w.events }

// Services returns the services as the router last reported them, sorted
// by name (which may be ahead of the events delivered so far).
func (w *Watcher) Services() []Service {
	w.mu.Lock()
	defer w.mu.Unlock()
	out := make([]Service, 0, len(w.cur))
	for _, s := range w.cur {
		out = append(out, s.clone())
	}
	slices.SortFunc(out, func(a, b Service) int { return compareKeys(a.key(), b.key()) })
	return out
}

// Done returns a channel closed when the watcher has stopped (its context
// ended, Close was called or the router misbehaved).
func (w *Watcher) Done() <-chan struct{} { return w.done }

// Err returns nil while the watcher runs; afterwards an error wrapping
// parallax.ErrProtocol if the router sent something invalid, the context's
// error if it ended, or an error wrapping os.ErrClosed after Close.
func (w *Watcher) Err() error {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.err != nil {
		return w.err
	}
	return w.ctx.Err()
}

var errClosed = fmt.Errorf("services watcher closed: %w", os.ErrClosed)

// Close stops the watcher, releases its share of the process's control
// connection and waits for its goroutines; Events is closed. It is
// idempotent.
func (w *Watcher) Close() error {
	w.closeOnce.Do(func() {
		w.mu.Lock()
		if w.err == nil && w.ctx.Err() == nil {
			w.err = errClosed
		}
		w.mu.Unlock()
		w.cancel()
		<-w.done
	})
	return nil
}
