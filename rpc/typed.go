package rpc

import (
	"context"
	"fmt"

	"github.com/parallax-ipc/parallax"
	"github.com/parallax-ipc/parallax/segment"
)

// typeOf describes T for a service, checking its layout.
func typeOf[T any]() (Type, error) {
	if err := segment.CheckFixedLayout[T](); err != nil {
		return Type{}, err
	}
	size, align := segment.SizeOf[T]()
	return Type{Name: parallax.TypeName[T](), Size: uint32(size), Align: uint32(align)}, nil
}

// TypedClient calls a service with Req values and gets Resp values, both
// fixed-layout types (as for publisher.Typed) written in place in shared
// memory. Use [NewTypedClient].
type TypedClient[Req, Resp any] struct {
	c *Client
}

// TypedResponse is a response viewed as a Resp (read-only memory: do not
// write through Value).
type TypedResponse[Resp any] struct {
	Response
	v *Resp
}

// Value returns the response value, valid until Release.
func (r TypedResponse[Resp]) Value() *Resp { return r.v }

// NewTypedClient connects a typed client to service; opts' types are
// set from Req and Resp.
func NewTypedClient[Req, Resp any](ctx context.Context, service string, opts Options) (*TypedClient[Req, Resp], error) {
	var err error
	if opts.Request, err = typeOf[Req](); err == nil {
		opts.Response, err = typeOf[Resp]()
	}
	if err != nil {
		return nil, fmt.Errorf("typed rpc client of %q: %w", service, err)
	}
	c, err := NewClient(ctx, service, opts)
	if err != nil {
		return nil, err
	}
	return &TypedClient[Req, Resp]{c: c}, nil
}

// Client returns the untyped client.
func (t *TypedClient[Req, Resp]) Client() *Client { return t.c }

// Call sends v and returns the first response; the caller releases it.
func (t *TypedClient[Req, Resp]) Call(ctx context.Context, v Req) (TypedResponse[Resp], error) {
	ch, err := t.c.Loan(int(t.c.opts.Request.Size))
	if err != nil {
		return TypedResponse[Resp]{}, err
	}
	p, err := segment.View[Req](ch.Bytes())
	if err != nil {
		_ = t.c.Release(&ch)
		return TypedResponse[Resp]{}, err
	}
	*p = v
	st, err := t.c.Start(ctx, &ch)
	if err != nil {
		return TypedResponse[Resp]{}, err
	}
	r, err := st.Next(ctx)
	if err != nil {
		return TypedResponse[Resp]{}, err
	}
	if !r.End() {
		st.Close()
	}
	return view[Resp](r)
}

// view types response r, releasing it when it does not hold a Resp.
func view[Resp any](r Response) (TypedResponse[Resp], error) {
	v, err := segment.View[Resp](r.Bytes())
	if err != nil {
		_ = r.Release()
		return TypedResponse[Resp]{}, fmt.Errorf("typed response: %w", err)
	}
	return TypedResponse[Resp]{Response: r, v: v}, nil
}

// Close closes the client.
func (t *TypedClient[Req, Resp]) Close() error { return t.c.Close() }

// TypedServer serves a service of Req requests and Resp responses. Use
// [NewTypedServer].
type TypedServer[Req, Resp any] struct {
	s    *Server
	size int
}

// TypedRequest is a request viewed as a Req (read-only: do not write).
type TypedRequest[Req any] struct {
	Request
	v *Req
}

// Value returns the request value, valid until Release.
func (r TypedRequest[Req]) Value() *Req { return r.v }

// NewTypedServer starts a typed server of service.
func NewTypedServer[Req, Resp any](ctx context.Context, service string, opts Options) (*TypedServer[Req, Resp], error) {
	var err error
	if opts.Request, err = typeOf[Req](); err == nil {
		opts.Response, err = typeOf[Resp]()
	}
	if err != nil {
		return nil, fmt.Errorf("typed rpc server of %q: %w", service, err)
	}
	s, err := NewServer(ctx, service, opts)
	if err != nil {
		return nil, err
	}
	return &TypedServer[Req, Resp]{s: s, size: int(opts.Response.Size)}, nil
}

// Server returns the untyped server.
func (t *TypedServer[Req, Resp]) Server() *Server { return t.s }

// Receive returns the next request.
func (t *TypedServer[Req, Resp]) Receive(ctx context.Context) (TypedRequest[Req], error) {
	r, err := t.s.Receive(ctx)
	if err != nil {
		return TypedRequest[Req]{}, err
	}
	v, err := segment.View[Req](r.Bytes())
	if err != nil {
		_ = r.Release()
		return TypedRequest[Req]{}, fmt.Errorf("typed request of %q: %w", t.s.service, err)
	}
	return TypedRequest[Req]{Request: r, v: v}, nil
}

// Send sends v as a response to req; end marks the last one. ctx bounds
// the wait as in [Server.Send].
func (t *TypedServer[Req, Resp]) Send(ctx context.Context, req Request, v Resp, end bool) error {
	ch, err := t.s.Loan(t.size)
	if err != nil {
		return err
	}
	p, err := segment.View[Resp](ch.Bytes())
	if err != nil {
		_ = t.s.Release(&ch)
		return err
	}
	*p = v
	return t.s.Send(ctx, req, &ch, end)
}

// Respond sends v as req's last response.
func (t *TypedServer[Req, Resp]) Respond(ctx context.Context, req Request, v Resp) error {
	return t.Send(ctx, req, v, true)
}

// Close stops serving.
func (t *TypedServer[Req, Resp]) Close() error { return t.s.Close() }
