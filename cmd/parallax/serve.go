package main

import (
	"context"
	"flag"
	"fmt"
	"os/signal"
	"syscall"

	"github.com/parallax-ipc/parallax/internal/wire"
	"github.com/parallax-ipc/parallax/rpc"
)

func init() {
	register(&command{name: "serve", short: "serve a request/response service (debugging: -echo answers each request with itself)",
		usage: "[flags] -echo <service>", flags: serveFlags})
}

// serveFlags declares serve's flags. The command serves the service until
// -n requests or Ctrl-C; today its only mode is -echo.
func serveFlags(fs *flag.FlagSet) runFunc {
	echo := fs.Bool("echo", false, "answer every request with its own bytes (required: the only mode)")
	count := fs.Int("n", 0, "stop after this many requests (0: until interrupted)")
	maxResp := fs.Int("max-response", 0, "largest response in bytes (0: the router's default)")
	quiet := fs.Bool("q", false, "do not print a line per request")
	return func(e *env, fs *flag.FlagSet, g *globals) int {
		const name = "serve"
		if fs.NArg() != 1 {
			fs.Usage()
			return exitUsage
		}
		if !*echo {
			return failf(e, name, exitUsage, "give a mode: -echo")
		}
		if *count < 0 {
			return failf(e, name, exitUsage, "-n must not be negative, got %d", *count)
		}
		service := fs.Arg(0)
		if err := wire.ValidateTopic(service); err != nil {
			return failf(e, name, exitUsage, "invalid service name: %v", err)
		}
		path, domain, err := g.target()
		if err != nil {
			return routerError(e, name, g, err)
		}
		ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
		defer stop()
		dctx, cancel := context.WithTimeout(ctx, requestTimeout)
		s, err := rpc.NewServer(dctx, service, rpc.Options{Domain: domain, Socket: path, MaxResponse: *maxResp})
		cancel()
		if err != nil {
			return routerError(e, name, g, err)
		}
		defer s.Close()
		fmt.Fprintf(e.stdout, "serving %s\n", service)
		for n := 0; *count == 0 || n < *count; n++ {
			r, err := s.Receive(ctx)
			if err != nil {
				if ctx.Err() != nil {
					return exitOK // interrupted
				}
				return failf(e, name, exitFailure, "%v", err)
			}
			if !*quiet {
				render(e.stdout, "auto", r.ID()>>16, r.Client(), 0, r.Bytes())
			}
			err = s.Respond(ctx, r, r.Bytes())
			_ = r.Release()
			if err != nil {
				return failf(e, name, exitFailure, "%v", err)
			}
		}
		return exitOK
	}
}
