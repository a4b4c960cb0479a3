package main

import (
	"context"
	"errors"
	"flag"
	"io"
	"os/signal"
	"syscall"
	"time"

	"github.com/parallax-ipc/parallax/internal/wire"
	"github.com/parallax-ipc/parallax/rpc"
)

func init() {
	register(&command{name: "call", short: "call a request/response service once and print its responses (debugging)",
		usage: "[flags] <service> [data|-]", flags: callFlags})
}

// callFlags declares call's flags. The command sends data (an argument,
// stdin with "-", or an empty request) to one server of the service and
// prints every response of the call until the server ends it.
func callFlags(fs *flag.FlagSet) runFunc {
	format := fs.String("format", "auto", "rendering: auto (text if printable, else hex), text, hex, or len (sizes only)")
	timeout := fs.Duration("timeout", 5*time.Second, "deadline of the call, waiting for a server included")
	maxReq := fs.Int("max-request", 0, "largest request in bytes (0: the router's default)")
	return func(e *env, fs *flag.FlagSet, g *globals) int {
		const name = "call"
		if fs.NArg() < 1 || fs.NArg() > 2 {
			fs.Usage()
			return exitUsage
		}
		service := fs.Arg(0)
		if err := wire.ValidateTopic(service); err != nil {
			return failf(e, name, exitUsage, "invalid service name: %v", err)
		}
		switch *format {
		case "auto", "text", "hex", "len":
		default:
			return failf(e, name, exitUsage, "-format must be auto, text, hex or len, got %q", *format)
		}
		var data []byte
		if fs.NArg() == 2 {
			data = []byte(fs.Arg(1))
			if fs.Arg(1) == "-" {
				b, err := io.ReadAll(e.stdin)
				if err != nil {
					return failf(e, name, exitFailure, "read stdin: %v", err)
				}
				data = b
			}
		}
		path, domain, err := g.target()
		if err != nil {
			return routerError(e, name, g, err)
		}
		sctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
		defer stop()
		ctx, cancel := context.WithTimeout(sctx, *timeout)
		defer cancel()
		c, err := rpc.NewClient(ctx, service, rpc.Options{Domain: domain, Socket: path, MaxRequest: max(*maxReq, len(data)), MaxInFlight: 1})
		if err != nil {
			return routerError(e, name, g, err)
		}
		defer c.Close()
		if err := c.WaitForServers(ctx, 1); err != nil {
			return failf(e, name, exitFailure, "no server of %q within %v", service, *timeout)
		}
		ch, err := c.Loan(len(data))
		if err != nil {
			return failf(e, name, exitFailure, "%v", err)
		}
		copy(ch.Bytes(), data)
		st, err := c.Start(ctx, &ch)
		if err != nil {
			return failf(e, name, exitFailure, "%v", err)
		}
		for n := uint64(1); ; n++ {
			r, err := st.Next(ctx)
			if err != nil {
				if errors.Is(err, rpc.ErrEnded) {
					return exitOK
				}
				return failf(e, name, exitFailure, "%v", err)
			}
			render(e.stdout, *format, n, 0, time.Now().UnixNano(), r.Bytes())
			end := r.End()
			_ = r.Release()
			if end {
				return exitOK
			}
		}
	}
}
