package clientrt

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"time"

	"github.com/parallax-ipc/parallax"
	"github.com/parallax-ipc/parallax/internal/background"
	"github.com/parallax-ipc/parallax/internal/discovery"
	"github.com/parallax-ipc/parallax/internal/wire"
)

// Create sends the Create request of a new endpoint (publisher or
// subscriber) and returns its reply, which must be an R, with the fds that
// came with it. The caller brackets it with BeginCreate/EndCreate, then
// registers the endpoint and calls Wired. When ctx ends before the reply,
// the endpoint the router creates all the same is closed when the reply
// comes (undoCreate); until then the request counts as a Create in flight
// and holds a reference to rt, so the pushes for the endpoint stay held
// and the control connection stays up for its close.
func Create[R wire.Message](ctx context.Context, rt *Runtime, req wire.Message) (R, []*os.File, error) {
	var zero R
	call, err := rt.Start(req)
	if err != nil {
		return zero, nil, err
	}
	rt.holdCreate()
	reply, files, err := call.WaitUndo(ctx, func(c *discovery.Client, m wire.Message, files []*os.File) {
		defer rt.unholdCreate()
		if m != nil {
			rt.undoCreate(c, m, files)
		}
	})
	if !discovery.GaveUp(err) {
		rt.unholdCreate()
	}
	if err != nil {
		return zero, nil, err
	}
	r, ok := reply.(R)
	if !ok {
		closeAll(files)
		return zero, nil, fmt.Errorf("unexpected reply %T to %T: %w", reply, req, parallax.ErrProtocol)
	}
	return r, files, nil
}

// holdCreate keeps rt, and a Create in flight, for a Create request
// whose caller may give up: its undo needs both (unholdCreate). It counts
// as background work (package background) until then.
func (rt *Runtime) holdCreate() {
	background.Start()
	runtimes.mu.Lock()
	rt.refs++
	runtimes.mu.Unlock()
	rt.BeginCreate()
}

// unholdCreate ends what holdCreate started.
func (rt *Runtime) unholdCreate() {
	rt.EndCreate()
	rt.Release()
	background.Done()
}

// Wired waits until the connections the router pushed for a just-registered
// endpoint reached it. The router sends them before its reply to the
// Create request, so after this a first sample cannot miss a peer that
// existed when the endpoint was created.
func (rt *Runtime) Wired(ctx context.Context) error { return rt.Barrier(ctx) }

// AcquireCreate acquires the runtime for opts, announces a Create request
// on it (BeginCreate) and sends req, as [Acquire] and [Create] do, retrying
// as [AcquireDo] does. On success the caller holds one reference to rt and
// calls rt.EndCreate once the endpoint registered (or failed to).
func AcquireCreate[R wire.Message](ctx context.Context, opts Options, req wire.Message) (*Runtime, R, []*os.File, error) {
	var r R
	var files []*os.File
	rt, err := AcquireDo(ctx, opts, func(rt *Runtime) error {
		rt.BeginCreate()
		var err error
		if r, files, err = Create[R](ctx, rt, req); err != nil {
			rt.EndCreate()
		}
		return err
	})
	if err != nil {
		var zero R
		return nil, zero, nil, err
	}
	return rt, r, files, nil
}

// AcquireDo acquires the runtime for opts and runs attempt on it. On
// success the caller holds one reference to the runtime returned. An
// attempt that fails undoes what it did on rt before it returns; AcquireDo
// then releases rt.
//
// An attempt that finds the control connection dead ([ConnDead]: the
// router went away and this process had not noticed yet, or it died right
// after the dial) is run once more on a fresh runtime: the dead
// connection's router created nothing that survives it, and the failure
// marked that connection dead, so Acquire does not hand it out again.
// Other errors, and a second dead connection, are returned.
func AcquireDo(ctx context.Context, opts Options, attempt func(rt *Runtime) error) (*Runtime, error) {
	for n := 0; ; n++ {
		rt, err := Acquire(ctx, opts)
		if err != nil {
			return nil, err
		}
		if err = attempt(rt); err == nil {
			return rt, nil
		}
		rt.Release()
		if n > 0 || !ConnDead(err) || ctx.Err() != nil {
			return nil, err
		}
	}
}

// ConnDead reports whether a request failed because the control
// connection is gone (IsClosed), not because the router answered with an
// error: a router's "unavailable" reply wraps ErrDaemonUnavailable too,
// and sending the request again would only repeat it. AcquireDo retries
// on it.
func ConnDead(err error) bool {
	var re *wire.RemoteError
	return IsClosed(err) && !errors.As(err, &re)
}

// undoTimeout bounds the requests that take back what a request whose
// caller gave up created.
const undoTimeout = 5 * time.Second

// undoCreate closes, at the router behind c, the endpoint a Create request
// made after its caller gave up waiting (the undo of Create): otherwise it
// would stay for as long as the connection, a publisher with its data
// segment and a subscriber taking a queue's worth of every sample sent on
// its topic, and nobody in this process would ever use or close them. It
// runs with the Create still in flight (holdCreate), so the pushes the
// router sent for the endpoint are held for it, and are taken here as a
// closing endpoint's: a subscriber's connections are released after its
// close (closedsub.go), as its own Close would, or they would stay closing
// at the router, holding their publishers' chunks, while this process
// lives.
func (rt *Runtime) undoCreate(c *discovery.Client, m wire.Message, files []*os.File) {
	closeAll(files)
	var req wire.Message
	var pub bool
	var id uint32
	switch r := m.(type) {
	case *wire.PublisherCreated:
		req, pub, id = &wire.ClosePublisher{PubID: r.PubID}, true, r.PubID
	case *wire.SubscriberCreated:
		req, id = &wire.CloseSubscriber{SubID: r.SubID}, r.SubID
	default:
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), undoTimeout)
	defer cancel()
	// The pushes the router sent before its reply (a publisher's data
	// segment, the endpoint's connections) are routed first: held for the
	// endpoint, they are taken now. A failed Barrier (the connection went,
	// or its reader is stuck) still closes the endpoint.
	berr := c.Barrier(ctx)
	rt.abandonEndpoint(pub, id)
	_, rfiles, err := c.Request(ctx, req, nil)
	closeAll(rfiles)
	if pub {
		rt.CloseOwnedPublisher(id)
	} else {
		rt.releaseAbandonedSub(ctx, c, id)
	}
	if err == nil {
		err = berr
	}
	switch {
	case err == nil:
		slog.Debug("parallax: closed an endpoint whose creation was given up", "pub", pub, "id", id)
	case !IsClosed(err): // a router that went away took the endpoint with it
		slog.Warn("parallax: cannot close an endpoint whose creation was given up", "pub", pub, "id", id, "err", err)
	}
}

// releaseAbandonedSub releases, over c, the connections the router pushed
// for subscriber id, which never registered and which c's router has just
// closed, and forgets it once the pushes received meanwhile are routed
// (those are released as they come: closedsub.go).
func (rt *Runtime) releaseAbandonedSub(ctx context.Context, c *discovery.Client, id uint32) {
	ids := rt.TakeClosedConns(id, nil)
	calls := make([]*discovery.Call, 0, len(ids))
	for _, cid := range ids {
		if call, err := c.Start(&wire.ReleaseConnection{ConnID: cid}, nil); err == nil {
			calls = append(calls, call)
		}
	}
	for _, call := range calls {
		if _, files, err := call.Wait(ctx); err == nil {
			closeAll(files)
		}
	}
	_ = c.Barrier(ctx)
	rt.ForgetClosed(id)
}
