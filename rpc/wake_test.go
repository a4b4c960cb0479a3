package rpc

import (
	"context"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/parallax-ipc/parallax/internal/routertest"
)

// TestHandoffWakesOne: when the goroutine taking responses for everyone
// gets its own response and lets go, it wakes one waiting call, not all of
// them. 15 calls wait on one client while the server holds their
// requests; it answers the taker's call first: a wake of every waiting
// call wakes 13 of them for nothing (neither their response nor the
// taker's role for them), a targeted one none.
func TestHandoffWakesOne(t *testing.T) {
	t.Parallel()
	srv := routertest.Start(t, routertest.Owned)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	const calls = 15
	opts := Options{Socket: srv.SocketPath(), MaxInFlight: calls}
	s, err := NewServer(ctx, "herd", opts)
	require.NoError(t, err)
	defer s.Close()
	c, err := NewClient(ctx, "herd", opts)
	require.NoError(t, err)
	defer c.Close()
	require.NoError(t, c.WaitForServers(ctx, 1))

	var wg sync.WaitGroup
	for i := range calls {
		ch, err := c.Loan(1)
		require.NoError(t, err)
		ch.Bytes()[0] = byte(i)
		st, err := c.Start(ctx, &ch)
		require.NoError(t, err)
		wg.Add(1)
		go func() {
			defer wg.Done()
			r, err := st.Next(ctx)
			if err != nil {
				t.Errorf("call %d: %v", i, err)
				return
			}
			_ = r.Release()
		}()
	}
	var held []Request
	for range calls {
		r, err := s.Receive(ctx)
		require.NoError(t, err)
		held = append(held, r)
	}
	// Let the callers reach their wait: every call but the taker's sleeps.
	taker := uint64(0)
	require.Eventually(t, func() bool {
		c.mu.Lock()
		defer c.mu.Unlock()
		n := 0
		for i := range c.slots {
			if sl := &c.slots[i]; sl.waiting {
				n++
			} else if sl.id != 0 {
				taker = sl.id
			}
		}
		return n == calls-1
	}, 10*time.Second, time.Millisecond, "14 calls waiting")
	// Answer the taker first: it lets go with 14 calls waiting.
	for i, r := range held {
		if r.ID() == taker {
			held[0], held[i] = held[i], held[0]
		}
	}
	require.Equal(t, taker, held[0].ID())
	require.NoError(t, s.Respond(ctx, held[0], held[0].Bytes()))
	require.NoError(t, held[0].Release())
	// One of the others takes over; the rest sleep again.
	require.Eventually(t, func() bool {
		c.mu.Lock()
		defer c.mu.Unlock()
		n := 0
		for i := range c.slots {
			if c.slots[i].waiting {
				n++
			}
		}
		return n == calls-2 && c.slots[taker&0xffff].id != taker
	}, 10*time.Second, time.Millisecond, "13 calls waiting again")
	for _, r := range held[1:] {
		require.NoError(t, s.Respond(ctx, r, r.Bytes()))
		require.NoError(t, r.Release())
	}
	wg.Wait()
	c.mu.Lock()
	idle := c.idle
	c.mu.Unlock()
	t.Logf("%d calls woken for nothing, %d calls", idle, calls)
	require.LessOrEqual(t, idle, uint64(2), "calls woken for nothing")
}
