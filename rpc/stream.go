package rpc

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/parallax-ipc/parallax"
	"github.com/parallax-ipc/parallax/dataseg"
	"github.com/parallax-ipc/parallax/subscriber"
)

// takeSlice bounds one sleep of the goroutine that takes responses, so it
// notices its own call's failure (server gone) and ctx's end promptly
// while it sleeps on the response queue.
const takeSlice = 2 * time.Millisecond

// A Stream is the responses of one call, in the order the server sent
// them. Use [Client.Start]; call Next until a response with End (or an
// error), or Close to drop the rest. A Stream is a small value; one
// goroutine uses it at a time.
type Stream struct {
	c   *Client
	idx int32
	id  uint64
}

// ID returns the call's request id (per client, never reused).
func (s Stream) ID() uint64 { return s.id }

// A Response is one response. Its bytes alias the server's memory (mapped
// read-only) and are valid until Release; release it exactly once.
type Response struct {
	s   subscriber.Sample
	end bool
}

// Bytes returns the payload (read-only: do not write).
func (r Response) Bytes() []byte { return r.s.Bytes() }

// End reports whether this is the call's last response.
func (r Response) End() bool { return r.end }

// Release gives the response back to the server.
func (r Response) Release() error { return r.s.Release() }

func metaFor(id uint64, flags uint32) dataseg.Meta { return dataseg.Meta{UserSeq: id, Flags: flags} }

// Next returns the call's next response, waiting until it arrives, ctx
// ends (the error wraps ctx.Err(), and parallax.ErrTimeout for a
// deadline), or the server goes ([ErrServerGone]). After the response
// with End, or an error, the call is over: Next returns [ErrEnded].
func (s Stream) Next(ctx context.Context) (Response, error) {
	c := s.c
	if c == nil {
		return Response{}, ErrEnded
	}
	// pass: this goroutine was handed the baton (see handoff) and has not
	// tried to take since; it hands it on when it returns without taking.
	pass := false
	r, err := s.next(ctx, &pass)
	if pass {
		c.handoff()
	}
	return r, err
}

func (s Stream) next(ctx context.Context, pass *bool) (Response, error) {
	c := s.c
	woke := false // the last sleep ended by a wake
	for {
		c.mu.Lock()
		sl := &c.slots[s.idx]
		if sl.id != s.id {
			c.mu.Unlock()
			return Response{}, fmt.Errorf("next response of call %d on %q: %w", s.id, c.service, ErrEnded)
		}
		sl.waiting = false
		if sl.baton {
			sl.baton, *pass = false, true
		}
		if sl.head >= 0 {
			x := c.unpark(sl)
			end := x.Header().Flags&FlagEnd != 0
			if end {
				c.freeSlot(s.idx)
			}
			c.mu.Unlock()
			return Response{s: x, end: end}, nil
		}
		failed := sl.err
		c.mu.Unlock()
		if failed != nil {
			// A last look: responses the server sent before it went
			// may still be queued.
			if c.taker.TryLock() {
				*pass = false
				_ = c.drain()
				c.taker.Unlock()
				c.handoff()
			}
			c.mu.Lock()
			if sl.id == s.id && sl.head >= 0 {
				c.mu.Unlock()
				continue
			}
			if sl.id == s.id {
				c.freeSlot(s.idx)
			}
			c.mu.Unlock()
			return Response{}, failed
		}
		if err := ctx.Err(); err != nil {
			s.Close()
			return Response{}, callCtxErr(c, s.id, err)
		}
		if s.take(ctx, sl, pass) {
			continue
		}
		if woke {
			c.mu.Lock()
			c.idle++
			c.mu.Unlock()
		}
		// Mark the call waiting, then look at the taker once more: a taker
		// that let go before the mark did not pick this call, so it must
		// take itself (or another taker holds it and will hand off).
		c.mu.Lock()
		sl.waiting = sl.id == s.id && sl.head < 0 && sl.err == nil
		c.mu.Unlock()
		if s.take(ctx, sl, pass) {
			continue
		}
		select {
		case <-sl.wake:
			woke = true
		case <-ctx.Done():
		}
	}
}

// take takes responses for everyone until the call has one, if no other
// goroutine does (it reports whether it did). A failure of the take ends
// the call: Next returns it (as a response to look at: the slot has the
// error or is closed).
func (s Stream) take(ctx context.Context, sl *slot, pass *bool) bool {
	c := s.c
	if !c.taker.TryLock() {
		*pass = false // the holder hands off when it lets go
		return false
	}
	*pass = false
	c.mu.Lock()
	sl.waiting = false
	c.mu.Unlock()
	err := c.takeFor(ctx, sl, s.id)
	c.taker.Unlock()
	c.handoff()
	if err != nil {
		c.mu.Lock()
		if sl.id == s.id && sl.err == nil {
			sl.err = err
		}
		c.mu.Unlock()
	}
	return true
}

// Close ends the call: responses still to come are dropped. It is a no-op
// after the last response or an error.
func (s Stream) Close() {
	c := s.c
	if c == nil {
		return
	}
	c.mu.Lock()
	if c.slots[s.idx].id == s.id {
		c.freeSlot(s.idx)
	}
	c.mu.Unlock()
}

func callCtxErr(c *Client, id uint64, err error) error {
	return ctxErr(fmt.Sprintf("call %d on %q", id, c.service), err)
}

// ctxErr wraps the end of a caller's ctx: with parallax.ErrTimeout as well
// for a deadline.
func ctxErr(what string, err error) error {
	if errors.Is(err, context.DeadlineExceeded) {
		return fmt.Errorf("%s: %w (%w)", what, parallax.ErrTimeout, err)
	}
	return fmt.Errorf("%s: %w", what, err)
}

// takeFor takes responses for everyone until slot sl (call id) has one,
// fails, or ctx ends (returned as the call's error). c.taker held.
func (c *Client) takeFor(ctx context.Context, sl *slot, id uint64) error {
	for {
		c.mu.Lock()
		done := sl.id != id || sl.head >= 0 || sl.err != nil
		c.mu.Unlock()
		if done {
			return nil
		}
		if err := ctx.Err(); err != nil {
			return callCtxErr(c, id, err)
		}
		wait := takeSlice
		if d, ok := ctx.Deadline(); ok {
			wait = min(wait, max(time.Until(d), time.Microsecond))
		}
		x, err := c.resp.TakeTimeout(wait)
		if err != nil {
			if errors.Is(err, parallax.ErrTimeout) {
				continue
			}
			return fmt.Errorf("call %d on %q: take a response: %w", id, c.service, err)
		}
		c.dispatch(x)
	}
}

// drain dispatches every response queued now. c.taker held.
func (c *Client) drain() error {
	for {
		x, err := c.resp.TryTake()
		if err != nil {
			if errors.Is(err, subscriber.ErrNoData) {
				return nil
			}
			return err
		}
		c.dispatch(x)
	}
}

// dispatch parks response x in its call's slot, or releases it when the
// call is over (or the id is not one of ours).
func (c *Client) dispatch(x subscriber.Sample) {
	id := x.Header().UserSeq
	idx := int(id & 0xffff)
	c.mu.Lock()
	if id != 0 && idx < len(c.slots) {
		if sl := &c.slots[idx]; sl.id == id && c.park(sl, x) {
			wake(sl)
			c.mu.Unlock()
			return
		}
	}
	c.mu.Unlock()
	_ = x.Release()
}

// handoff wakes one waiting call (with the baton) after the taker let go,
// so it takes next; calls that have their response or failure were woken
// by dispatch or serverGone already. Nobody else is woken: a call that
// returns without taking passes the baton on (Next).
func (c *Client) handoff() {
	c.mu.Lock()
	n := len(c.slots)
	for k := range n {
		i := (c.next + k) % n
		if sl := &c.slots[i]; sl.waiting && sl.head < 0 && sl.err == nil {
			sl.waiting, sl.baton = false, true
			c.next = i + 1
			wake(sl)
			break
		}
	}
	c.mu.Unlock()
}
