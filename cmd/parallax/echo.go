package main

import (
	"context"
	"encoding/hex"
	"flag"
	"fmt"
	"io"
	"os/signal"
	"syscall"
	"time"
	"unicode/utf8"

	"github.com/parallax-ipc/parallax/internal/wire"
	"github.com/parallax-ipc/parallax/subscriber"
)

func init() {
	register(&command{name: "echo", short: "print the messages published on a topic (debugging)",
		usage: "[flags] <topic>", flags: echoFlags})
}

// echoFlags declares echo's flags. The command subscribes to a topic and prints each message until -n messages,
// -timeout without a message, or Ctrl-C.
func echoFlags(fs *flag.FlagSet) runFunc {
	count := fs.Int("n", 0, "stop after this many messages (0: until interrupted)")
	format := fs.String("format", "auto", "rendering: auto (text if printable, else hex), text, hex, or len (sizes only)")
	idle := fs.Duration("timeout", 0, "give up after this long without a message (0: wait forever)")
	typeName := fs.String("type", "", "payload type name (must match the publishers')")
	history := fs.Int("history", 0, "ask publishers for up to N past messages")
	queue := fs.Int("queue", 0, "queue capacity per publisher (0: the router's default)")
	return func(e *env, fs *flag.FlagSet, g *globals) int {
		const name = "echo"
		if fs.NArg() != 1 {
			fs.Usage()
			return exitUsage
		}
		topic := fs.Arg(0)
		if err := wire.ValidateTopic(topic); err != nil {
			return failf(e, name, exitUsage, "invalid topic name: %v", err)
		}
		switch *format {
		case "auto", "text", "hex", "len":
		default:
			return failf(e, name, exitUsage, "-format must be auto, text, hex or len, got %q", *format)
		}
		if *count < 0 {
			return failf(e, name, exitUsage, "-n must not be negative, got %d", *count)
		}
		path, domain, err := g.target()
		if err != nil {
			return routerError(e, name, g, err)
		}
		ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
		defer stop()
		dctx, cancel := context.WithTimeout(ctx, requestTimeout)
		sub, err := subscriber.New(dctx, topic, subscriber.Options{Domain: domain, Socket: path, TypeName: *typeName, History: *history, QueueCapacity: *queue})
		cancel()
		if err != nil {
			return routerError(e, name, g, err)
		}
		defer sub.Close()
		for n := 0; *count == 0 || n < *count; n++ {
			tctx, cancel := ctx, context.CancelFunc(func() {})
			if *idle > 0 {
				tctx, cancel = context.WithTimeout(ctx, *idle)
			}
			s, err := sub.Take(tctx)
			cancel()
			if err != nil {
				if ctx.Err() != nil {
					return exitOK // interrupted
				}
				if tctx.Err() != nil {
					return failf(e, name, exitFailure, "no message on %q for %v (%d received)", topic, *idle, n)
				}
				return failf(e, name, exitFailure, "take from %q: %v", topic, err)
			}
			h := s.Header()
			render(e.stdout, *format, h.Seq, h.PublisherID, h.Timestamp, s.Bytes())
			if err := s.Release(); err != nil {
				return failf(e, name, exitFailure, "release: %v", err)
			}
		}
		return exitOK
	}
}

// render prints one message: a header line and the payload as text or a
// hex dump.
func render(w io.Writer, format string, seq uint64, pub uint32, ts int64, b []byte) {
	fmt.Fprintf(w, "#%d pub=%d %dB %s", seq, pub, len(b), time.Unix(0, ts).Format("15:04:05.000000"))
	text := format == "text" || format == "auto" && printable(b)
	switch {
	case format == "len":
		fmt.Fprintln(w)
	case text:
		fmt.Fprintf(w, ": %s\n", b)
	default:
		fmt.Fprintln(w)
		const max = 256
		d := b
		if len(d) > max {
			d = d[:max]
		}
		_, _ = io.WriteString(w, hex.Dump(d))
		if len(b) > max {
			fmt.Fprintf(w, "... %d more bytes\n", len(b)-max)
		}
	}
}

// printable reports whether b is valid UTF-8 without control characters
// other than tab and newline.
func printable(b []byte) bool {
	if !utf8.Valid(b) {
		return false
	}
	for _, r := range string(b) {
		if r < 0x20 && r != '\t' && r != '\n' || r == 0x7f {
			return false
		}
	}
	return true
}
