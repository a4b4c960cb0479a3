package clientrt

import (
	"context"
	"fmt"
	"os"

	"github.com/parallax-ipc/parallax"
	"github.com/parallax-ipc/parallax/internal/wire"
)

// Create sends the Create request of a new endpoint (publisher or
// subscriber) and returns its reply, which must be an R, with the fds that
// came with it. The caller brackets it with BeginCreate/EndCreate, then
// registers the endpoint and calls Wired.
func Create[R wire.Message](ctx context.Context, rt *Runtime, req wire.Message) (R, []*os.File, error) {
	var zero R
	reply, files, err := rt.Request(ctx, req)
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
