package elements

import (
	"context"
	"errors"
	"fmt"
	"sync/atomic"
	"time"

	"github.com/parallax-ipc/parallax"
	"github.com/parallax-ipc/parallax/buffer"
	"github.com/parallax-ipc/parallax/pipeline"
	"github.com/parallax-ipc/parallax/rpc"
)

// IPCCall calls a request/response service (package rpc) once per buffer:
// it is an [rpc.Client], so a pipeline can use a server in another process
// (for example `ipccall service=enhance`). The router must run the owned
// memory model.
//
// Per buffer it loans a request chunk from the client's own segment,
// copies the buffer into it, sends it to one server (round-robin) and
// waits for the response under the pipeline's context (and Timeout, when
// set). The response becomes the output buffer: a read-only view of the
// server's memory (no byte is copied, [buffer.Buffer.Writable] reports
// false), given back to the server when the buffer is released. The
// output carries the input buffer's metadata (PTS, DTS, duration, offset,
// flags, Seq) unchanged. A server that streams several responses to one
// request: the first is the output, the rest are dropped.
//
// A failed call (no server, the server went, the deadline passed) fails
// the pipeline with an error naming the service.
//
// At most MaxInFlight output buffers are out at once (their responses are
// held); the next call waits for one to be released.
//
// Set the fields before the pipeline starts; Service is required. Calls
// may be read from any goroutine. Close disconnects the client; responses
// held by buffers stay valid until released.
type IPCCall struct {
	Service        string
	Domain, Socket string        // router selection ("": defaults)
	RequestType    string        // request payload type name ("": untyped bytes)
	ResponseType   string        // response payload type name ("": untyped bytes)
	MaxRequest     int           // largest buffer, in bytes (the request chunk size; 0: the router's default)
	MaxInFlight    int           // responses held by output buffers at once (0: rpc.DefaultMaxInFlight)
	Timeout        time.Duration // per-call deadline (0: none beyond the pipeline's context)
	// WaitServers makes Start wait until that many servers are connected
	// (0: do not wait; a call with no server fails with rpc.ErrNoServer).
	WaitServers int

	client *rpc.Client
	free   chan *callMem
	// held counts responses held by output buffers; a call past
	// MaxInFlight waits on released.
	held     atomic.Int64
	released chan struct{}
	calls    atomic.Uint64
}

var ipcCallFactory = pipeline.Factory{
	Name: "ipccall", Kind: "transform",
	Description: "Calls a Parallax request/response service per buffer; the response (zero copy, read-only) is the output",
	Properties: []pipeline.PropSpec{
		{Name: "service", Type: pipeline.PropString, Description: "service to call (required)"},
		{Name: "domain", Type: pipeline.PropString, Description: "router domain (default: $PARALLAX_DOMAIN or \"default\")"},
		{Name: "socket", Type: pipeline.PropString, Description: "router control socket (default: derived from the domain)"},
		{Name: "request-type", Type: pipeline.PropString, Description: "request payload type name (default: untyped bytes)"},
		{Name: "response-type", Type: pipeline.PropString, Description: "response payload type name (default: untyped bytes)"},
		{Name: "max-request", Type: pipeline.PropBytes, Default: "0", Description: "largest buffer sent (the request chunk size; 0: the router's default)", Min: 0, Max: 1 << 30},
		{Name: "max-in-flight", Type: pipeline.PropInt, Default: "0", Description: "responses held by output buffers at once (0: 16)", Min: 0, Max: 1 << 16},
		{Name: "timeout", Type: pipeline.PropDuration, Default: "0s", Description: "per-call deadline (0: none)", Min: 0, Max: float64(24 * time.Hour)},
		{Name: "wait-servers", Type: pipeline.PropInt, Default: "1", Description: "wait for this many servers before starting (0: do not wait)", Min: 0, Max: 1 << 20},
	},
	New: func(p *pipeline.Props) (pipeline.Element, error) {
		c := &IPCCall{Service: p.String("service"), Domain: p.String("domain"), Socket: p.String("socket"),
			RequestType: p.String("request-type"), ResponseType: p.String("response-type"),
			MaxRequest: int(p.Bytes("max-request")), MaxInFlight: int(p.Int("max-in-flight")),
			Timeout: p.Duration("timeout"), WaitServers: int(p.Int("wait-servers"))}
		if c.Service == "" {
			return nil, &pipeline.PropertyError{Element: "ipccall", Property: "service", Err: fmt.Errorf("%w: required", pipeline.ErrBadValue), Hint: "for example service=enhance"}
		}
		return c, nil
	},
}

// PadSpec implements [pipeline.PadDeclarer]: one input, one output.
func (c *IPCCall) PadSpec() pipeline.PadSpec {
	return pipeline.PadSpec{MinIn: 1, MaxIn: 1, MinOut: 1, MaxOut: 1}
}

// Start implements [pipeline.Starter]: it connects the client and waits
// for WaitServers servers.
func (c *IPCCall) Start(ctx context.Context) error {
	if c.Service == "" {
		return errors.New("ipccall: no service set")
	}
	if c.MaxInFlight <= 0 {
		c.MaxInFlight = rpc.DefaultMaxInFlight
	}
	cl, err := rpc.NewClient(ctx, c.Service, rpc.Options{Domain: c.Domain, Socket: c.Socket,
		Request: rpc.Type{Name: c.RequestType}, Response: rpc.Type{Name: c.ResponseType},
		MaxRequest: c.MaxRequest, MaxInFlight: c.MaxInFlight})
	if err != nil {
		return fmt.Errorf("ipccall: %w", err)
	}
	if c.WaitServers > 0 {
		if err := cl.WaitForServers(ctx, c.WaitServers); err != nil {
			_ = cl.Close()
			return fmt.Errorf("ipccall: %w", err)
		}
	}
	c.client = cl
	c.free = make(chan *callMem, c.MaxInFlight)
	c.released = make(chan struct{}, 1)
	return nil
}

// Client returns the element's rpc client (nil before Start).
func (c *IPCCall) Client() *rpc.Client { return c.client }

// Calls returns the calls answered so far.
func (c *IPCCall) Calls() uint64 { return c.calls.Load() }

// Process implements [pipeline.Transform]: one call per buffer.
func (c *IPCCall) Process(ctx context.Context, b *buffer.Buffer) (*buffer.Buffer, error) {
	meta := b.Meta
	r, err := c.call(ctx, b)
	b.Release()
	if err != nil {
		return nil, err
	}
	var m *callMem
	select {
	case m = <-c.free:
	default:
		m = &callMem{call: c}
	}
	m.resp = r
	m.mem.Init(r.Bytes(), m, nil, 0, parallax.NilRef)
	m.mem.SetReadOnly()
	out := m.mem.NewBuffer(len(r.Bytes()))
	out.Meta = meta
	c.calls.Add(1)
	return out, nil
}

// call sends b's bytes and returns the first response, counted as held.
func (c *IPCCall) call(ctx context.Context, b *buffer.Buffer) (rpc.Response, error) {
	// Hold at most MaxInFlight responses: the client parks no more.
	for c.held.Add(1) > int64(c.MaxInFlight) {
		c.held.Add(-1)
		select {
		case <-c.released:
		case <-ctx.Done():
			return rpc.Response{}, fmt.Errorf("ipccall %q: wait for a held response to be released: %w", c.Service, context.Cause(ctx))
		}
	}
	if c.Timeout > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, c.Timeout)
		defer cancel()
	}
	ch, err := c.client.Loan(b.Len())
	if err == nil {
		copy(ch.Bytes(), b.Bytes())
		var st rpc.Stream
		if st, err = c.client.Start(ctx, &ch); err == nil {
			var r rpc.Response
			if r, err = st.Next(ctx); err == nil {
				if !r.End() {
					st.Close() // the rest of a stream is dropped
				}
				return r, nil
			}
		}
	}
	c.unhold()
	return rpc.Response{}, fmt.Errorf("ipccall: %w", err)
}

// unhold counts one held response back and wakes a waiting call.
func (c *IPCCall) unhold() {
	c.held.Add(-1)
	select {
	case c.released <- struct{}{}:
	default:
	}
}

// Close implements io.Closer: it disconnects the client.
func (c *IPCCall) Close() error {
	if c.client == nil {
		return nil
	}
	return c.client.Close()
}

// callMem is one response seen as buffer memory; it is its memory's
// Owner, so releasing the last buffer releases the response.
type callMem struct {
	mem  buffer.Memory
	resp rpc.Response
	call *IPCCall
}

// Free implements [buffer.Owner].
func (m *callMem) Free(*buffer.Memory) {
	_ = m.resp.Release()
	m.resp = rpc.Response{}
	c := m.call
	select {
	case c.free <- m:
	default:
	}
	c.unhold()
}
