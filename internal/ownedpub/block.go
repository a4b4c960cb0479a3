package ownedpub

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/parallax-ipc/parallax"
	"github.com/parallax-ipc/parallax/internal/owner"
)

// The block-producer slow path (design §2.6). Each wait releases mu, with
// e.blocked set (other Publish calls wait: c's data ring has one producer)
// and c.pushing set (RemoveConn waits before it lets the caller unmap c).
// Everything here allocates (a context); it runs only when a ring is full.

// waitPush pushes ref, already delivered on c in the Tracker, into c's
// full block-producer data ring, waiting for space up to BlockTimeout. mu
// held on entry and return.
func (e *Engine) waitPush(c *Conn, ref parallax.ChunkRef) error {
	// The subscriber must pop to make room: make sure it is awake.
	if err := e.notify(c); err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(c.ctx, e.opts.BlockTimeout)
	defer cancel()
	return e.pushWaiting(ctx, c, ref)
}

// pushWaiting is waitPush's wait under a given context. mu held.
func (e *Engine) pushWaiting(ctx context.Context, c *Conn, ref parallax.ChunkRef) error {
	var err error
	e.unlocked(c, func() { _, err = c.data.Push(ctx, ref) })
	if err == nil && !c.removed {
		c.delivered++
		return e.notify(c)
	}
	// Not pushed (or pushed into a connection removed meanwhile, whose
	// chunks RemoveConn took back): undo the delivery. The ref never
	// reached the ring, so nobody else can have returned it, and the bit
	// is ours to clear unless RemoveConn reclaimed it.
	if !c.ct.Gone() {
		_ = e.tr.Return(c.ct, ref)
	}
	return e.blockErr(c, err)
}

// waitBound waits until c, a block-producer connection at its bound after
// a drain, has returned something, drains it, and delivers idx. mu held.
func (e *Engine) waitBound(c *Conn, idx uint32, ref parallax.ChunkRef) error {
	ctx, cancel := context.WithTimeout(c.ctx, e.opts.BlockTimeout)
	defer cancel()
	opts := e.opts.Wait
	opts.Timeout, opts.Deadline = 0, deadlineOf(ctx)
	for {
		var err error
		e.unlocked(c, func() { err = c.rc.ReturnWake().Wait(ctx, c.retReady, opts) })
		if err == nil && ctx.Err() != nil {
			err = ctx.Err() // retReady saw the connection end
		}
		if err != nil || c.removed || !c.ct.Live() {
			return e.blockErr(c, err)
		}
		e.drain(c)
		if c.err != nil {
			return c.err
		}
		switch err := e.tr.Deliver(c.ct, idx); {
		case err == nil:
			if e.push(c, ref) {
				return e.notify(c)
			}
			if c.err != nil {
				return c.err
			}
			return e.pushWaiting(ctx, c, ref)
		case err != owner.ErrBound:
			e.fail(c, err)
			return c.err
		}
	}
}

// unlocked runs wait with mu released and c marked as waited on. mu held
// on entry and return.
func (e *Engine) unlocked(c *Conn, wait func()) {
	e.blocked, c.pushing = true, true
	e.mu.Unlock()
	wait()
	e.mu.Lock()
	e.blocked, c.pushing = false, false
	e.cond.Broadcast()
}

// blockErr turns the end of a failed wait on c into Publish's error: nil
// when the connection was closed or removed meanwhile (it no longer wants
// messages), a timeout error naming c, or c's failure. mu held.
func (e *Engine) blockErr(c *Conn, err error) error {
	switch {
	case c.removed || !c.ct.Live() || c.ctx.Err() != nil:
		return c.err
	case errors.Is(err, parallax.ErrTimeout) || errors.Is(err, context.DeadlineExceeded):
		c.timeouts++
		e.timeouts++
		return fmt.Errorf("publish on block-producer connection %d: full for %v: %w", c.ID(), e.opts.BlockTimeout, parallax.ErrTimeout)
	case err == nil:
		return nil
	}
	e.fail(c, err)
	return c.err
}

func deadlineOf(ctx context.Context) (d time.Time) {
	d, _ = ctx.Deadline()
	return d
}
