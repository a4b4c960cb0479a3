// Package rpclink carries what package rpc needs from package publisher
// and package subscriber without widening their public API: the endpoint
// kind and pair for the create request, and a publisher's connections and
// engine (docs/design/request-response.md). Package rpc puts a [*Pub] or
// [*Sub] into the context it passes to publisher.New or subscriber.New;
// nothing else does.
package rpclink

import (
	"context"

	"github.com/parallax-ipc/parallax/internal/clientrt"
	"github.com/parallax-ipc/parallax/internal/ownedpub"
	"github.com/parallax-ipc/parallax/internal/wire"
	"github.com/parallax-ipc/parallax/ringbuf"
)

// ConnInfo is one connection of a linked publisher, attached to its
// engine.
type ConnInfo struct {
	ID    uint32 // connection id
	SubID uint32 // the subscriber
	Pair  uint32 // the subscriber's paired request publisher (response connections), or 0
	Conn  *ownedpub.Conn
	// Ring is the connection segment the engine pushes into; an event
	// notifier (package event) pushes event ids into its data ring itself
	// and never publishes through the engine.
	Ring *ringbuf.Conn
}

// Pub links a request/response publisher. The hooks run on the process
// runtime's push goroutine (or in publisher.New), never concurrently with
// each other, and must not block.
type Pub struct {
	Kind uint8 // wire.EndpointRequest or wire.EndpointResponse
	// Engine is set by publisher.New (owned model only) before any hook
	// runs; package rpc loans and publishes through it.
	Engine *ownedpub.Engine
	// Added runs when a connection is attached to the engine.
	Added func(ConnInfo)
	// Gone runs when a connection stops taking deliveries: closing (code
	// 0) or removed (its ConnectionRemoved code), before the engine
	// reclaims its chunks.
	Gone func(id uint32, code wire.RemovedCode)
}

// Sub links a request/response or event subscriber.
type Sub struct {
	Kind uint8  // wire.EndpointRequest, wire.EndpointResponse or wire.EndpointEvent
	Pair uint32 // for a response subscriber: the client's request publisher

	// Added, when set (event listeners), takes each connection instead of
	// the subscriber's engine: it runs once both the ConnectionAdded and
	// the connection segment arrived, and owns c from then on (it must
	// Close it once it no longer touches the segment). The hooks run on
	// the push goroutine, one at a time, and must not block.
	Added func(id, pub uint32, c *clientrt.OwnedConn)
	// Gone runs when an Added connection is removed (its code); the
	// runtime releases the connection at the router afterwards.
	Gone func(id uint32, code wire.RemovedCode)
	// Report is set by subscriber.New before any hook runs: an event
	// listener reports through it an Added connection whose ring failed
	// validation (a wire.ReportPeer, corruptRing choosing
	// wire.ReportCorruptRing over wire.ReportBadRef; detail is the
	// error's text). The router cuts that connection; its Gone follows.
	// It does not block.
	Report func(conn uint32, corruptRing bool, detail string)
}

type pubKey struct{}
type subKey struct{}

// WithPub returns ctx carrying l for publisher.New.
func WithPub(ctx context.Context, l *Pub) context.Context { return context.WithValue(ctx, pubKey{}, l) }

// PubFrom returns the link in ctx, or nil.
func PubFrom(ctx context.Context) *Pub { l, _ := ctx.Value(pubKey{}).(*Pub); return l }

// WithSub returns ctx carrying l for subscriber.New.
func WithSub(ctx context.Context, l *Sub) context.Context { return context.WithValue(ctx, subKey{}, l) }

// SubFrom returns the link in ctx, or nil.
func SubFrom(ctx context.Context) *Sub { l, _ := ctx.Value(subKey{}).(*Sub); return l }
