package services

import (
	"context"
	"fmt"
	"os"
	"slices"
	"sync"
	"time"

	"github.com/parallax-ipc/parallax/internal/discovery"
	"github.com/parallax-ipc/parallax/internal/wire"
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

// A Watcher follows the router's services. It has its own control
// connection and two goroutines (one applies the router's pushes, one
// delivers events), which exit when the context given to [Watch] ends or
// [Watcher.Close] is called.
//
// Use [Watch]; the zero value is invalid. A Watcher must not be copied;
// its methods are safe for concurrent use.
type Watcher struct {
	opts   discovery.DialOptions
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

// Watch connects to the router, takes the snapshot of its services and
// returns a Watcher whose [Watcher.Events] starts with them. It fails
// with an error wrapping [parallax.ErrDaemonUnavailable] when no router
// runs. The watcher runs until ctx ends or Close is called; it survives
// router restarts.
func Watch(ctx context.Context, opts Options) (*Watcher, error) {
	wctx, cancel := context.WithCancel(ctx)
	w := &Watcher{
		opts:   discovery.DialOptions{Socket: opts.Socket, Domain: opts.Domain, Name: opts.Name},
		ctx:    wctx,
		cancel: cancel,
		events: make(chan Event),
		wake:   make(chan struct{}, 1),
		done:   make(chan struct{}),
		cur:    map[key]Service{},
		seen:   map[key]Service{},
		isDir:  map[key]bool{},
	}
	c, synced, err := w.connect()
	if err != nil {
		cancel()
		return nil, err
	}
	select {
	case <-synced:
	case <-c.Done():
		cancel()
		c.Close()
		return nil, w.connErr(c)
	case <-wctx.Done():
		cancel()
		c.Close()
		return nil, fmt.Errorf("watch services: %w", wctx.Err())
	}
	w.wg.Add(2)
	go w.run(c)
	go w.deliver()
	go func() {
		w.wg.Wait()
		close(w.done)
	}()
	return w, nil
}

// connErr returns a protocol error the watcher recorded, or why c stopped.
func (w *Watcher) connErr(c *discovery.Client) error {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.err != nil {
		return w.err
	}
	return fmt.Errorf("watch services: %w", c.Err())
}

// connect dials the router and starts watching; synced is closed once the
// snapshot is applied.
func (w *Watcher) connect() (*discovery.Client, <-chan struct{}, error) {
	c, err := discovery.Dial(w.ctx, w.opts)
	if err != nil {
		return nil, nil, fmt.Errorf("watch services: %w", err)
	}
	st := &stream{w: w, c: c, snap: map[key]Service{}, synced: make(chan struct{})}
	c.OnPush(st.push)
	if _, _, err := c.Request(w.ctx, &wire.WatchServices{}, nil); err != nil {
		c.Close()
		w.mu.Lock()
		perr := w.err // a protocol error in the pushes closed c
		w.mu.Unlock()
		if perr != nil {
			return nil, nil, perr
		}
		return nil, nil, fmt.Errorf("watch services: %w", err)
	}
	return c, st.synced, nil
}

// run keeps a connection to the router, reconnecting after it went away.
func (w *Watcher) run(c *discovery.Client) {
	defer w.wg.Done()
	for {
		select {
		case <-w.ctx.Done():
			c.Close()
			return
		case <-c.Done():
		}
		c.Close()
		if c = w.reconnect(); c == nil {
			w.cancel() // ended, or the router sent something invalid: stop
			return
		}
	}
}

// reconnect redials until a router answers with a snapshot, or returns
// nil when the watcher ends or a router broke the protocol.
func (w *Watcher) reconnect() *discovery.Client {
	backoff := minBackoff
	for {
		w.mu.Lock()
		perr := w.err
		w.mu.Unlock()
		if perr != nil {
			return nil
		}
		t := time.NewTimer(backoff)
		select {
		case <-w.ctx.Done():
			t.Stop()
			return nil
		case <-t.C:
		}
		backoff = min(2*backoff, maxBackoff)
		c, synced, err := w.connect()
		if err != nil {
			continue
		}
		select {
		case <-synced:
			return c
		case <-c.Done():
			c.Close()
		case <-w.ctx.Done():
			c.Close()
			return nil
		}
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

// Close stops the watcher, closes its connection and waits for its
// goroutines; Events is closed. It is idempotent.
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
