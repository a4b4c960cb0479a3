package clientrt

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"sync"
	"sync/atomic"
	"time"

	"github.com/parallax-ipc/parallax/internal/discovery"
	"github.com/parallax-ipc/parallax/internal/testhook"
	"github.com/parallax-ipc/parallax/internal/wire"
)

// Reconnecting after the router died.
//
// When the control connection breaks (the router was killed), the
// runtime's data path keeps working: segments stay mapped, rings keep
// flowing. A goroutine then redials the same socket with a short backoff
// (20 ms doubling to 200 ms, so a router that is back is found well within
// a second of its ready line). If the new router adopted this process's
// segments (same management memfd inode), the runtime sends a Resume with
// its client id and every endpoint and connection it runs, and from then on
// uses the new connection. A router that started with fresh segments
// cannot take the endpoints back: the runtime stops trying, its endpoints
// keep running among the survivors, and new endpoints get a new runtime.

// Resumer is implemented by endpoints that can re-register after a router
// restart.
type Resumer interface {
	// ResumeInfo describes the endpoint and its connections.
	ResumeInfo() (pub *wire.ResumePublisher, sub *wire.ResumeSubscriber, conns []wire.ResumeConnection)
}

// controlConn is the runtime's control connection: the client it dialed,
// then whichever connection resumed it after a router restart. It is the
// only wrapper around a discovery.Client in the client library, and the
// registry of runtimes (runtime.go) the only place that shares one: each
// process holds at most one control connection per router socket.
type controlConn struct {
	first *discovery.Client
	cur   atomic.Pointer[discovery.Client]
}

func newControlConn(c *discovery.Client) *controlConn {
	cc := &controlConn{first: c}
	cc.cur.Store(c)
	return cc
}

func (c *controlConn) Request(ctx context.Context, m wire.Message, files []*os.File) (wire.Message, []*os.File, error) {
	return c.cur.Load().Request(ctx, m, files)
}
func (c *controlConn) Start(m wire.Message) (*discovery.Call, error) {
	return c.cur.Load().Start(m, nil)
}
func (c *controlConn) Barrier(ctx context.Context) error { return c.cur.Load().Barrier(ctx) }
func (c *controlConn) Done() <-chan struct{}             { return c.cur.Load().Done() }
func (c *controlConn) Err() error                        { return c.cur.Load().Err() }
func (c *controlConn) Welcome() wire.Welcome             { return c.first.Welcome() }
func (c *controlConn) OnPush(h discovery.PushHandler) func() {
	return c.first.OnPush(h)
}

// Close closes the dialed connection and a resumed one.
func (c *controlConn) Close() {
	if cur := c.cur.Load(); cur != c.first {
		cur.Close()
	}
	c.first.Close()
}

// reconnector state of a Runtime.
type reconnector struct {
	stop    chan struct{}
	once    sync.Once
	wg      sync.WaitGroup
	resumed atomic.Uint64 // successful resumes (for tests and logs)
	// abandoned is set when the runtime stops reconnecting (services.go
	// Abandoned).
	abandoned atomic.Bool
}

// ResumeCount returns how many times this runtime resumed with a restarted
// router.
func (rt *Runtime) ResumeCount() uint64 { return rt.rc.resumed.Load() }

func (rt *Runtime) startReconnector(dopts discovery.DialOptions) {
	rt.rc.stop = make(chan struct{})
	rt.rc.wg.Add(1)
	go func() {
		defer rt.rc.wg.Done()
		defer rt.rc.abandoned.Store(true)
		for {
			select {
			case <-rt.client.Done():
			case <-rt.rc.stop:
				return
			}
			if !rt.reconnect(dopts) {
				return
			}
		}
	}()
}

func (rt *Runtime) stopReconnector() {
	if rt.rc.stop == nil {
		return
	}
	rt.rc.once.Do(func() { close(rt.rc.stop) })
	rt.rc.wg.Wait()
}

// reconnect redials until a router answers; it returns true once resumed,
// false when it should give up (stopped, or the router did not adopt us).
func (rt *Runtime) reconnect(dopts discovery.DialOptions) bool {
	backoff := 20 * time.Millisecond
	for {
		select {
		case <-rt.rc.stop:
			return false
		case <-time.After(backoff):
		}
		backoff = min(2*backoff, 200*time.Millisecond)
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		nc, err := discovery.Dial(ctx, dopts)
		cancel()
		if err != nil {
			continue
		}
		ok, retry := rt.resume(nc)
		if ok {
			return true
		}
		nc.Close()
		if !retry {
			return false
		}
	}
}

// resume re-registers this process's endpoints with the router behind nc.
func (rt *Runtime) resume(nc *discovery.Client) (ok, retry bool) {
	// The token of our first Welcome: the restarted router checks it (and
	// our pid and uid) against what the previous one recorded.
	m := &wire.Resume{OldClient: rt.welcome.ClientID, Token: rt.welcome.ResumeToken}
	rt.mu.Lock()
	seen := map[uint32]bool{}
	collect := func(ep Endpoint) {
		r, ok := ep.(Resumer)
		if !ok {
			return
		}
		p, s, conns := r.ResumeInfo()
		if p != nil {
			m.Publishers = append(m.Publishers, *p)
		}
		if s != nil {
			m.Subscribers = append(m.Subscribers, *s)
		}
		for _, c := range conns {
			if !seen[c.ConnID] {
				seen[c.ConnID] = true
				m.Connections = append(m.Connections, c)
			}
		}
	}
	for _, ep := range rt.pubs {
		collect(ep)
	}
	for _, ep := range rt.subs {
		collect(ep)
	}
	files := rt.addOwnedResume(m) // reconnect_owned.go
	if len(files) > wire.MaxResumeFds {
		rt.mu.Unlock()
		slog.Warn("parallax: too many owned segments to hand back to the restarted router in one resume; endpoints keep running without a router",
			"segments", len(files), "limit", wire.MaxResumeFds)
		return false, false
	}
	// Dups, taken with the snapshot, so that an endpoint closed from here
	// on cannot close an fd being sent.
	files, err := dupFiles(files)
	if err == nil {
		rt.beginResumeCloses() // resumeclose.go
	}
	rt.mu.Unlock()
	if err != nil {
		slog.Warn("parallax: resume: cannot dup owned segment fds", "err", err)
		return false, true
	}
	// Kill/pause window: the snapshot is taken, the router not told yet.
	testhook.Pause("resume.snapshot")
	remove := nc.OnPush(rt.onPush)
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	reply, _, err := nc.Request(ctx, m, files)
	closeAll(files)
	if err != nil {
		rt.failResume(remove)
		slog.Warn("parallax: resume refused by the restarted router", "err", err)
		return false, false
	}
	if r, ok := reply.(*wire.Resumed); !ok || r.ClientID != rt.welcome.ClientID {
		rt.failResume(remove)
		slog.Warn("parallax: unexpected resume reply", "reply", fmt.Sprintf("%T", reply))
		return false, false
	}
	// Pause window: the router took this client back, the process still
	// sends on the old connection.
	testhook.Pause("resume.replied")
	rt.mu.Lock() // StartClose reads cur under mu
	old := rt.client.cur.Swap(nc)
	rt.mu.Unlock()
	if old != rt.client.first {
		old.Close()
	}
	rt.rc.resumed.Add(1)
	slog.Info("parallax: resumed with a restarted router", "socket", nc.Path(), "client", rt.welcome.ClientID,
		"publishers", len(m.Publishers), "subscribers", len(m.Subscribers), "connections", len(m.Connections))
	rt.closeResumedGone(nc, m)
	return true, false
}

// failResume undoes a resume that the router refused: its push handler
// goes, and closes are no longer recorded.
func (rt *Runtime) failResume(remove func()) {
	remove()
	rt.mu.Lock()
	rt.endResumeCloses()
	rt.mu.Unlock()
}
