//go:build linux

package bench_test

import (
	"context"
	"fmt"
	"os"
	"strconv"
	"testing"
	"time"

	"github.com/parallax-ipc/parallax/internal/routertest"
	"github.com/parallax-ipc/parallax/rpc"
)

// ownedConfig is routerConfig in the owned memory model, which
// request/response needs.
const ownedConfig = routerConfig + `
[memory]
model = "owned"
`

// rpcPayloads are the request and response sizes of BenchmarkRPCRoundTrip.
var rpcPayloads = []int{64, 1 << 20}

// BenchmarkRPCRoundTrip: one call per op to a server in a child process
// (request filled by the parent, read in full by the server, response of
// the same size filled by the server, read in full by the parent), beside
// the pub/sub round trip of BenchmarkRoundTrip against the same owned
// router configuration, in blocking and busy-poll modes, and (blocking
// only: a socket read always sleeps in the kernel) beside kind=uds, the
// same request/response over a Unix stream socket to a child process,
// copying the bytes both ways (BenchmarkRoundTripUDS). Issue 13's target is
// kind=rpc within 1.2x of kind=pubsub in the same run, 0 allocs/op.
//
//	go test -run='^$' -bench=RPCRoundTrip -benchtime=2000x ./tests/bench
func BenchmarkRPCRoundTrip(b *testing.B) {
	for _, m := range modes {
		if m.name == "spin-then-block" {
			continue
		}
		for _, size := range rpcPayloads {
			b.Run(fmt.Sprintf("mode=%s/payload=%d/kind=rpc", m.name, size), func(b *testing.B) {
				benchRPC(b, m, size)
			})
			b.Run(fmt.Sprintf("mode=%s/payload=%d/kind=pubsub", m.name, size), func(b *testing.B) {
				benchRoundTripIn(b, ownedConfig, m, size)
			})
			if m.name == "blocking" {
				b.Run(fmt.Sprintf("mode=%s/payload=%d/kind=uds", m.name, size), func(b *testing.B) {
					benchRoundTripUDS(b, size)
				})
			}
		}
	}
}

func rpcOptions(sock string, m mode, size int) rpc.Options {
	return rpc.Options{Socket: sock, MaxRequest: size, MaxResponse: size, MaxInFlight: 1, Spin: m.spin, BusyPoll: m.busyPoll}
}

func benchRPC(b *testing.B, m mode, size int) {
	srv := routertest.Start(b, ownedConfig)
	sock := srv.SocketPath()
	ctx, cancel := context.WithTimeout(context.Background(), childTimeout)
	defer cancel()
	c, err := rpc.NewClient(ctx, "bench", rpcOptions(sock, m, size))
	if err != nil {
		b.Fatal(err)
	}
	defer c.Close()
	startChild(b, "rpc-echo", sock, m.name, strconv.Itoa(size))
	if err := c.WaitForServers(ctx, 1); err != nil {
		b.Fatal(err)
	}
	call := func(cmd byte) error {
		ch, err := c.Loan(size)
		if err != nil {
			return err
		}
		fill(ch.Bytes(), cmd)
		st, err := c.Start(ctx, &ch)
		if err != nil {
			return err
		}
		// Next without a deadline allocates nothing; the child's own
		// timeout ends a stuck run.
		r, err := st.Next(context.Background())
		if err != nil {
			return err
		}
		touch(r.Bytes())
		return r.Release()
	}
	for range 10 { // warm up both sides
		if err := call(cmdData); err != nil {
			b.Fatal(err)
		}
	}
	lat := make(latencies, 0, maxRecorded)
	b.ReportAllocs()
	for b.Loop() {
		t0 := time.Now()
		if err := call(cmdData); err != nil {
			b.Fatal(err)
		}
		lat.add(time.Since(t0))
	}
	b.StopTimer()
	lat.report(b)
	if err := call(cmdQuit); err != nil {
		b.Fatal(err)
	}
}

// rpcEchoMain is the server child of BenchmarkRPCRoundTrip: args are the
// router socket, the mode name and the payload size.
func rpcEchoMain(args []string) int {
	if len(args) != 3 {
		fmt.Fprintln(os.Stderr, "rpc-echo: want socket, mode and size")
		return 2
	}
	m, ok := modeByName(args[1])
	size, err := strconv.Atoi(args[2])
	if !ok || err != nil {
		fmt.Fprintf(os.Stderr, "rpc-echo: bad mode %q or size %q\n", args[1], args[2])
		return 2
	}
	ctx, cancel := context.WithTimeout(context.Background(), childTimeout)
	defer cancel()
	s, err := rpc.NewServer(ctx, "bench", rpcOptions(args[0], m, size))
	if err != nil {
		fmt.Fprintf(os.Stderr, "rpc-echo: %v\n", err)
		return 1
	}
	defer s.Close()
	for {
		// Background: a Receive that never ends by context allocates
		// nothing; the parent's quit request ends the loop.
		r, err := s.Receive(context.Background())
		if err != nil {
			fmt.Fprintf(os.Stderr, "rpc-echo: receive: %v\n", err)
			return 1
		}
		in := r.Bytes()
		quit := in[0] == cmdQuit
		touch(in)
		ch, err := s.Loan(len(in))
		if err == nil {
			fill(ch.Bytes(), cmdData)
			err = s.Send(ctx, r, &ch, true)
		}
		_ = r.Release()
		if err != nil {
			fmt.Fprintf(os.Stderr, "rpc-echo: respond: %v\n", err)
			return 1
		}
		if quit {
			return 0
		}
	}
}
