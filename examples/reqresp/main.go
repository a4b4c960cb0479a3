//go:build linux

// Command reqresp is a request/response example (package rpc): a planner
// server answers typed goals with typed paths, zero-copy both ways, and a
// client calls it with a deadline per call. Run a router with
// [memory] model = "owned", then in two shells:
//
//	reqresp -serve -socket /tmp/x/roudi.sock
//	reqresp -calls 10 -socket /tmp/x/roudi.sock
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/parallax-ipc/parallax/rpc"
)

// Goal is a request: go from (X0, Y0) to (X1, Y1).
type Goal struct{ X0, Y0, X1, Y1 int32 }

// Path is a response: the waypoints of a straight line, Len of them.
type Path struct {
	Len int32
	_   int32
	Pts [16][2]int32
}

const service = "planner"

func main() {
	socket := flag.String("socket", "", "router control socket (default: derived from $PARALLAX_DOMAIN)")
	serve := flag.Bool("serve", false, "serve the planner (default: call it)")
	calls := flag.Int("calls", 5, "calls to make")
	flag.Parse()
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	var err error
	if *serve {
		err = runServer(ctx, *socket, nil)
	} else {
		err = runClient(ctx, *socket, *calls, os.Stdout)
	}
	if err != nil && !errors.Is(err, context.Canceled) {
		fmt.Fprintln(os.Stderr, "reqresp:", err)
		os.Exit(1)
	}
}

// runServer answers goals until ctx ends; ready (if not nil) is closed
// once it serves.
func runServer(ctx context.Context, socket string, ready chan<- struct{}) error {
	s, err := rpc.NewTypedServer[Goal, Path](ctx, service, rpc.Options{Socket: socket})
	if err != nil {
		return err
	}
	defer s.Close()
	if ready != nil {
		close(ready)
	}
	for {
		req, err := s.Receive(ctx)
		if err != nil {
			return err
		}
		err = s.Respond(ctx, req.Request, plan(*req.Value()))
		_ = req.Release()
		if err != nil {
			return err
		}
	}
}

// plan returns up to 16 waypoints from the start to the end of g.
func plan(g Goal) Path {
	var p Path
	p.Len = 16
	for i := range p.Pts {
		p.Pts[i] = [2]int32{g.X0 + (g.X1-g.X0)*int32(i)/15, g.Y0 + (g.Y1-g.Y0)*int32(i)/15}
	}
	return p
}

// runClient makes calls to the planner, each with a 1 s deadline, and
// prints the paths' ends.
func runClient(ctx context.Context, socket string, calls int, out io.Writer) error {
	c, err := rpc.NewTypedClient[Goal, Path](ctx, service, rpc.Options{Socket: socket})
	if err != nil {
		return err
	}
	defer c.Close()
	wctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	err = c.Client().WaitForServers(wctx, 1)
	cancel()
	if err != nil {
		return err
	}
	for i := range calls {
		cctx, cancel := context.WithTimeout(ctx, time.Second)
		r, err := c.Call(cctx, Goal{X1: int32(10 * (i + 1)), Y1: int32(i)})
		cancel()
		if err != nil {
			return fmt.Errorf("call %d: %w", i, err)
		}
		p := r.Value()
		fmt.Fprintf(out, "call %d: %d waypoints, ends at %v\n", i, p.Len, p.Pts[p.Len-1])
		if err := r.Release(); err != nil {
			return err
		}
	}
	return nil
}
