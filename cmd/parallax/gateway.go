package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/parallax-ipc/parallax/gateway"
)

// topicFlags is a repeatable -export/-import flag.
type topicFlags []gateway.Topic

func (f *topicFlags) String() string {
	s := make([]string, len(*f))
	for i, t := range *f {
		s[i] = t.String()
	}
	return strings.Join(s, " ")
}

func (f *topicFlags) Set(v string) error {
	t, err := gateway.ParseTopic(v)
	if err != nil {
		return err
	}
	*f = append(*f, t)
	return nil
}

func init() {
	register(&command{name: "gateway", short: "bridge topics to and from NATS",
		usage: "-nats url [-export topic[:type[,size[,align]]]]... [-import topic[:type...]]... [-prefix parallax.] [-policy discard|block] [-stream name]",
		flags: gatewayFlags})
}

// gatewayFlags declares gateway's flags; the command runs a gateway until
// SIGINT or SIGTERM.
func gatewayFlags(fs *flag.FlagSet) runFunc {
	var opts gateway.Options
	var exports, imports topicFlags
	var level slog.Level
	fs.StringVar(&opts.NATSURL, "nats", "nats://127.0.0.1:4222", "NATS server URL(s), comma-separated")
	fs.Var(&exports, "export", "topic to subscribe locally and publish to NATS (repeatable); :type fixes the payload type")
	fs.Var(&imports, "import", "topic to receive from NATS and publish locally (repeatable); without :type the first message's type is used")
	fs.StringVar(&opts.Prefix, "prefix", gateway.DefaultPrefix, "NATS subject prefix")
	fs.StringVar(&opts.ID, "id", "", "gateway id in the header of its NATS messages (default: random)")
	fs.IntVar(&opts.QueueCapacity, "queue", 0, "exporters' local queue capacity per publisher (0 = router default)")
	fs.TextVar(&opts.Policy, "policy", gateway.PolicyDiscard, "when the bridge cannot keep up: discard (count losses, never slow publishers) or block (slow local publishers down to NATS's pace)")
	batch := fs.Bool("batch", true, "publish the samples an exporter finds queued together as one NATS message (false: one NATS message per sample, for importers or consumers that do not read batches)")
	fs.BoolVar(&opts.ImportWithNATSGo, "import-nats-go", false, "importers subscribe through nats.go instead of the gateway's own import connection (which copies each message once, into the local chunk)")
	fs.StringVar(&opts.Stream, "stream", "", "JetStream stream to export to and import from with durable consumers (default: core NATS, no persistence)")
	fs.StringVar(&opts.Durable, "durable", "", "name prefix of the importers' durable JetStream consumers (default: parallax_<id>)")
	fs.Int64Var(&opts.MaxMessageSize, "max-message-size", gateway.DefaultMaxMessageSize, "largest message an importer reassembles from parts, in bytes")
	fs.IntVar(&opts.MaxPayload, "max-payload", 0, "owned memory model: largest message an importer publishes locally, in bytes (its chunk size; 0 = router default)")
	fs.DurationVar(&opts.StatsInterval, "stats-interval", time.Minute, "period of the statistics log line (negative = never)")
	fs.DurationVar(&opts.ReportInterval, "report-interval", gateway.DefaultReportInterval, "period of the counter reports to the router, shown by parallax gateways (negative = never)")
	fs.TextVar(&level, "log-level", slog.LevelInfo, "log level (debug, info, warn, error)")
	metricsAddr := fs.String("metrics", "", "serve Prometheus metrics (parallax_gateway_*) on this address, e.g. 127.0.0.1:9465 (default: off)")
	return func(e *env, fs *flag.FlagSet, g *globals) int {
		if fs.NArg() > 0 {
			fmt.Fprintf(e.stderr, "parallax gateway: unexpected arguments %q (topics go in -export/-import)\n", fs.Args())
			return exitUsage
		}
		opts.Export, opts.Import = exports, imports
		opts.Unbatched = !*batch
		opts.Domain, opts.Socket = g.domain, g.socket
		opts.Logger = slog.New(slog.NewTextHandler(e.stderr, &slog.HandlerOptions{Level: level}))
		gw, err := gateway.New(opts)
		if err != nil {
			fmt.Fprintf(e.stderr, "parallax gateway: %v\n", err)
			if errors.Is(err, gateway.ErrInvalidArgument) {
				return exitUsage
			}
			return exitFailure
		}
		ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
		defer stop()
		if *metricsAddr != "" {
			ln, err := net.Listen("tcp", *metricsAddr)
			if err != nil {
				fmt.Fprintf(e.stderr, "parallax gateway: -metrics: %v\n", err)
				return exitUsage
			}
			reg := prometheus.NewRegistry()
			reg.MustRegister(gw.Collector())
			hs := &http.Server{Handler: promhttp.HandlerFor(reg, promhttp.HandlerOpts{}), ReadHeaderTimeout: 5 * time.Second}
			go func() { _ = hs.Serve(ln) }()
			defer hs.Close()
			fmt.Fprintf(e.stderr, "parallax gateway: metrics on http://%s/metrics\n", ln.Addr())
		}
		readyDone := make(chan struct{})
		go func() {
			defer close(readyDone)
			select {
			case <-gw.Ready():
				fmt.Fprintf(e.stdout, "gateway %s ready\n", gw.ID())
			case <-ctx.Done():
			}
		}()
		err = gw.Run(ctx)
		stop()
		<-readyDone
		if err != nil {
			fmt.Fprintf(e.stderr, "parallax gateway: %v\n", err)
			return exitFailure
		}
		fmt.Fprintf(e.stdout, "gateway %s stopped: %v\n", gw.ID(), gw.Stats())
		return exitOK
	}
}
