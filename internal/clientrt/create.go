package clientrt

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"time"

	"github.com/parallax-ipc/parallax"
	"github.com/parallax-ipc/parallax/internal/discovery"
	"github.com/parallax-ipc/parallax/internal/wire"
)

// Create sends the Create request of a new endpoint (publisher or
// subscriber) and returns its reply, which must be an R, with the fds that
// came with it. The caller brackets it with BeginCreate/EndCreate, then
// registers the endpoint and calls Wired. When ctx ends before the reply,
// the endpoint the router creates all the same is closed when the reply
// comes (undoCreate).
func Create[R wire.Message](ctx context.Context, rt *Runtime, req wire.Message) (R, []*os.File, error) {
	var zero R
	call, err := rt.Start(req)
	if err != nil {
		return zero, nil, err
	}
	reply, files, err := call.WaitUndo(ctx, rt.undoCreate)
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
// made after its caller gave up waiting (a discovery.UndoFunc): otherwise
// it would stay for as long as the connection, a publisher with its data
// segment and a subscriber taking a queue's worth of every sample sent on
// its topic, and nobody in this process would ever use or close them.
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
	// segment, the endpoint's connections) are handled first, so that
	// nothing of the endpoint is mapped after the unmap below.
	err := c.Barrier(ctx)
	if err == nil {
		var rfiles []*os.File
		_, rfiles, err = c.Request(ctx, req, nil)
		closeAll(rfiles)
	}
	if pub {
		rt.CloseOwnedPublisher(id)
	}
	switch {
	case err == nil:
		slog.Debug("parallax: closed an endpoint whose creation was given up", "pub", pub, "id", id)
	case !IsClosed(err): // a router that went away took the endpoint with it
		slog.Warn("parallax: cannot close an endpoint whose creation was given up", "pub", pub, "id", id, "err", err)
	}
}
