package main

import (
	"context"
	"encoding/hex"
	"flag"
	"io"
	"os/signal"
	"strings"
	"syscall"
	"time"

	"github.com/parallax-ipc/parallax/internal/wire"
	"github.com/parallax-ipc/parallax/publisher"
)

func init() {
	register(&command{name: "pub", short: "publish a message on a topic (debugging)",
		usage: "[flags] <topic> [data|-]", flags: pubFlags})
}

// pubFlags declares pub's flags. The command publishes data (an argument, stdin with "-", or an empty message)
// -n times, optionally waiting for subscribers first.
func pubFlags(fs *flag.FlagSet) runFunc {
	count := fs.Int("n", 1, "number of messages to publish")
	interval := fs.Duration("interval", 0, "pause between messages")
	subs := fs.Int("subs", 0, "wait for this many subscribers before publishing")
	wait := fs.Duration("timeout", 10*time.Second, "how long -subs waits")
	isHex := fs.Bool("hex", false, "data is hexadecimal (\"0a ff 10\" or \"0aff10\")")
	typeName := fs.String("type", "", "payload type name (subscribers must agree)")
	history := fs.Int("history", 0, "keep the last N messages for late subscribers (they must ask for history); the publisher lingers for -linger")
	linger := fs.Duration("linger", 0, "stay connected this long after the last message (for late joiners)")
	return func(e *env, fs *flag.FlagSet, g *globals) int {
		const name = "pub"
		if fs.NArg() < 1 || fs.NArg() > 2 {
			fs.Usage()
			return exitUsage
		}
		topic := fs.Arg(0)
		if err := wire.ValidateTopic(topic); err != nil {
			return failf(e, name, exitUsage, "invalid topic name: %v", err)
		}
		if *count < 1 {
			return failf(e, name, exitUsage, "-n must be at least 1, got %d", *count)
		}
		var data []byte
		if fs.NArg() == 2 {
			arg := fs.Arg(1)
			if arg == "-" {
				b, err := io.ReadAll(e.stdin)
				if err != nil {
					return failf(e, name, exitFailure, "read stdin: %v", err)
				}
				data = b
			} else {
				data = []byte(arg)
			}
			if *isHex {
				b, err := hex.DecodeString(strings.Join(strings.Fields(string(data)), ""))
				if err != nil {
					return failf(e, name, exitUsage, "-hex data: %v", err)
				}
				data = b
			}
		}
		path, domain, err := g.target()
		if err != nil {
			return routerError(e, name, g, err)
		}
		ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
		defer stop()
		dctx, cancel := context.WithTimeout(ctx, requestTimeout)
		pub, err := publisher.New(dctx, topic, publisher.Options{Domain: domain, Socket: path, TypeName: *typeName, History: *history})
		cancel()
		if err != nil {
			return routerError(e, name, g, err)
		}
		defer pub.Close()
		if *subs > 0 {
			wctx, cancel := context.WithTimeout(ctx, *wait)
			err := pub.WaitForSubscribers(wctx, *subs)
			cancel()
			if err != nil {
				return failf(e, name, exitFailure, "waiting for %d subscriber(s) on %q: %v", *subs, topic, err)
			}
		}
		for i := range *count {
			if i > 0 && *interval > 0 {
				select {
				case <-time.After(*interval):
				case <-ctx.Done():
					return exitOK
				}
			}
			if err := pub.Send(data); err != nil {
				return failf(e, name, exitFailure, "publish on %q: %v", topic, err)
			}
		}
		if *linger > 0 {
			select {
			case <-time.After(*linger):
			case <-ctx.Done():
			}
		}
		return exitOK
	}
}
