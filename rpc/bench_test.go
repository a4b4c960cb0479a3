package rpc_test

import (
	"context"
	"fmt"
	"os"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/parallax-ipc/parallax/internal/clientrt"
	"github.com/parallax-ipc/parallax/internal/routertest"
	"github.com/parallax-ipc/parallax/publisher"
	"github.com/parallax-ipc/parallax/roudi"
	"github.com/parallax-ipc/parallax/rpc"
	"github.com/parallax-ipc/parallax/subscriber"
)

// echoServer answers every request with its own bytes until ctx ends.
func echoServer(tb testing.TB, ctx context.Context, s *rpc.Server) {
	go func() {
		for {
			r, err := s.Receive(ctx)
			if err != nil {
				return
			}
			b := r.Bytes()
			ch, err := s.Loan(len(b))
			if err == nil {
				copy(ch.Bytes(), b)
				err = s.Send(ctx, r, &ch, true)
			}
			if err != nil && ctx.Err() == nil {
				tb.Errorf("respond: %v", err)
			}
			_ = r.Release()
		}
	}()
}

// waitReported waits until the router has a memory report of every
// publisher of this process. The first report of a process and of a
// publisher allocates once (the encoder's and decoder's type caches, the
// router's per-publisher metrics: ~140 objects); it comes up to
// clientrt.MemoryReportInterval after the endpoints are made, and inside
// an AllocsPerRun window (its calls take 200 ms and more when the server
// works 5 ms per call) it counted as 2-3 allocations per call on a loaded
// machine. Later reports allocate next to nothing (4 objects in 4 s idle).
func waitReported(t *testing.T, ctx context.Context, srv *roudi.Server) {
	t.Helper()
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	for {
		in, err := srv.Introspect(ctx)
		require.NoError(t, err)
		all := true
		for _, s := range in.PublisherSegments {
			if s.PID == int32(os.Getpid()) && !s.Dead && !s.Reported {
				all = false
			}
		}
		if all {
			return
		}
		select {
		case <-ctx.Done():
			t.Fatal("no memory report from this process's publishers")
		case <-time.After(5 * time.Millisecond):
		}
	}
}

// A call allocates nothing, on either side (AllocsPerRun counts the whole
// process: the server goroutine's allocations count too).
// Not parallel: AllocsPerRun refuses parallel tests.
func TestCallAllocs(t *testing.T) {
	srv := routertest.Start(t, routertest.Owned)
	ctx := testCtx(t)
	s, c := newPair(t, ctx, srv.SocketPath(), "allocs", rpc.Options{})
	sctx, stop := context.WithCancel(ctx)
	defer stop()
	echoServer(t, sctx, s)
	req := make([]byte, 64)
	call := func() {
		r, err := c.Call(context.Background(), req)
		if err != nil {
			t.Fatal(err)
		}
		_ = r.Release()
	}
	for range 100 {
		call() // warm up: maps, pairs, wakes
	}
	waitReported(t, ctx, srv)
	require.Zero(t, testing.AllocsPerRun(500, call))
}

// BenchmarkRoundTrip: one 64-byte request/response round trip in one
// process (client and server goroutines), beside the same round trip
// built from two pub/sub topics. Cross-process numbers belong in
// tests/bench.
func BenchmarkRoundTrip(b *testing.B) {
	srv := routertest.Start(b, routertest.Owned)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	sock := srv.SocketPath()
	for _, busy := range []bool{false, true} {
		mode := "blocking"
		if busy {
			mode = "busypoll"
		}
		b.Run("rpc/64B/"+mode, func(b *testing.B) {
			svc := "bench-rpc-" + mode
			opts := rpc.Options{Socket: sock, BusyPoll: busy}
			s, err := rpc.NewServer(ctx, svc, opts)
			require.NoError(b, err)
			defer s.Close()
			c, err := rpc.NewClient(ctx, svc, opts)
			require.NoError(b, err)
			defer c.Close()
			require.NoError(b, c.WaitForServers(ctx, 1))
			sctx, stop := context.WithCancel(ctx)
			defer stop()
			echoServer(b, sctx, s)
			req := make([]byte, 64)
			b.ReportAllocs()
			b.ResetTimer()
			for range b.N {
				r, err := c.Call(context.Background(), req)
				if err != nil {
					b.Fatal(err)
				}
				_ = r.Release()
			}
		})
		b.Run("pubsub/64B/"+mode, func(b *testing.B) {
			ping, pong := "bench-ping-"+mode, "bench-pong-"+mode
			sopts := subscriber.Options{Socket: sock, BusyPoll: busy, Policy: subscriber.BlockProducer}
			pubA, err := publisher.New(ctx, ping, publisher.Options{Socket: sock})
			require.NoError(b, err)
			defer pubA.Close()
			subB, err := subscriber.New(ctx, ping, sopts)
			require.NoError(b, err)
			defer subB.Close()
			pubB, err := publisher.New(ctx, pong, publisher.Options{Socket: sock})
			require.NoError(b, err)
			defer pubB.Close()
			subA, err := subscriber.New(ctx, pong, sopts)
			require.NoError(b, err)
			defer subA.Close()
			require.NoError(b, pubA.WaitForSubscribers(ctx, 1))
			require.NoError(b, pubB.WaitForSubscribers(ctx, 1))
			sctx, stop := context.WithCancel(ctx)
			defer stop()
			go func() {
				for {
					x, err := subB.Take(sctx)
					if err != nil {
						return
					}
					_ = pubB.Send(x.Bytes())
					_ = x.Release()
				}
			}()
			req := make([]byte, 64)
			b.ReportAllocs()
			b.ResetTimer()
			for range b.N {
				if err := pubA.Send(req); err != nil {
					b.Fatal(err)
				}
				x, err := subA.Take(context.Background())
				if err != nil {
					b.Fatal(err)
				}
				_ = x.Release()
			}
		})
	}
}

// A call whose response comes later than the client's take slice (the
// server works 5 ms) allocates nothing either, blocking or busy-polling:
// the slice's expiry is an internal timeout that must not build error
// values. (It did: three wrapped errors per expired slice, seen as
// 2 allocs/op in tests/bench BenchmarkRPCRoundTrip busy-poll 1 MiB on a
// loaded machine.) Not parallel: AllocsPerRun refuses parallel tests.
func TestSlowCallAllocs(t *testing.T) {
	srv := routertest.Start(t, routertest.Owned)
	ctx := testCtx(t)
	for _, busy := range []bool{false, true} {
		t.Run(fmt.Sprintf("busypoll=%v", busy), func(t *testing.T) {
			s, c := newPair(t, ctx, srv.SocketPath(), fmt.Sprintf("slow-%v", busy), rpc.Options{BusyPoll: busy})
			go func() {
				for {
					// Background: Receive allocates nothing; Close ends it.
					r, err := s.Receive(context.Background())
					if err != nil {
						return
					}
					time.Sleep(5 * time.Millisecond) // the server's work
					ch, err := s.Loan(len(r.Bytes()))
					if err == nil {
						err = s.Send(context.Background(), r, &ch, true)
					}
					_ = r.Release()
					if err != nil {
						return
					}
				}
			}()
			req := make([]byte, 64)
			call := func() {
				r, err := c.Call(context.Background(), req)
				if err != nil {
					panic(err)
				}
				_ = r.Release()
			}
			for range 5 {
				call()
			}
			waitReported(t, ctx, srv)
			require.Zero(t, allocsBetweenReports(t, ctx, srv, call))
		})
	}
}

// allocsBetweenReports is testing.AllocsPerRun of call over a window that
// holds no periodic memory report. While calls run, the process's
// publishers' figures change, so the runtime reports them every
// clientrt.MemoryReportInterval, and the report's round trip to the
// in-process router allocates ~100 objects (encoder, decoder, Validate's
// Sprintf, the request's context): inside a window of 40 slow calls that
// is 2-7 allocations per call. The window starts right after a report
// lands and counts only when it ended before the next one can start; on a
// machine too loaded for that the test skips (a per-call allocation shows
// in every window, so fewer runs still catch one).
func allocsBetweenReports(t *testing.T, ctx context.Context, srv *roudi.Server, call func()) float64 {
	t.Helper()
	const margin = 200 * time.Millisecond
	for _, runs := range []int{40, 40, 20, 20, 10, 10, 5, 5} {
		age := awaitFreshReport(t, ctx, srv, call)
		start := time.Now()
		a := testing.AllocsPerRun(runs, call)
		if took := time.Since(start); age+took+margin < clientrt.MemoryReportInterval {
			return a
		}
	}
	t.Skip("calls too slow for a window between two memory reports (a loaded machine)")
	return 0
}

// awaitFreshReport calls (so that the figures change and the runtime
// reports them) until the router got a report of this process's
// publishers at most 50 ms ago; it returns the report's age.
func awaitFreshReport(t *testing.T, ctx context.Context, srv *roudi.Server, call func()) time.Duration {
	t.Helper()
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	for {
		call()
		in, err := srv.Introspect(ctx)
		require.NoError(t, err)
		age := time.Duration(-1)
		for _, s := range in.PublisherSegments {
			if s.PID == int32(os.Getpid()) && !s.Dead && s.Reported {
				if a := time.Duration(s.AgeMs) * time.Millisecond; age < 0 || a < age {
					age = a
				}
			}
		}
		if age >= 0 && age <= 50*time.Millisecond {
			return age
		}
		require.NoError(t, ctx.Err(), "no fresh memory report of this process's publishers")
	}
}
