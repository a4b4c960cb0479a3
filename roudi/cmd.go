package roudi

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"os/signal"
	"syscall"

	"github.com/parallax-ipc/parallax/discovery"
	"github.com/parallax-ipc/parallax/roudi/procmon"
)

// Main is the body of the parallax-roudi command: it parses args (without
// the program name), runs a router until SIGINT or SIGTERM and returns the
// process exit code. Keeping it here keeps cmd/parallax-roudi tiny and lets
// tests run the command in-process.
func Main(args []string, stderr io.Writer) int {
	fs := flag.NewFlagSet("parallax-roudi", flag.ContinueOnError)
	fs.SetOutput(stderr)
	configPath := fs.String("config", "", "TOML config file (default: the embedded default config)")
	domain := fs.String("domain", "", "domain to serve (default: $PARALLAX_DOMAIN or \"default\")")
	socket := fs.String("socket", "", "control socket path (default: derived from the domain)")
	runtimeDir := fs.String("runtime-dir", "", "directory of the domain lock <domain>.lock (default: $XDG_RUNTIME_DIR/parallax or /tmp/parallax-<uid>)")
	logLevel := fs.String("log-level", "", "log level: debug, info, warn, error (default: from config)")
	logFormat := fs.String("log-format", "text", "log format: text or json")
	nice := fs.Int("nice", 0, "nice value for the router's threads, e.g. -10 (needs CAP_SYS_NICE; 0 = unchanged)")
	metricsAddr := fs.String("metrics", "", "serve Prometheus metrics at http://ADDR/metrics, e.g. 127.0.0.1:9464 (default: off)")
	printConfig := fs.Bool("print-default-config", false, "print the embedded default config and exit")
	monitor := fs.String("monitor", "auto", "process-exit monitor: auto (eBPF when privileged, else pidfd), ebpf or pidfd")
	if err := fs.Parse(args); err != nil {
		return 2
	}
	monMode, err := procmon.ParseMode(*monitor)
	if err != nil {
		fmt.Fprintf(stderr, "parallax-roudi: -monitor: %v\n", err)
		return 2
	}
	if *printConfig {
		fmt.Fprint(os.Stdout, string(defaultTOML))
		return 0
	}
	cfg := DefaultConfig()
	if *configPath != "" {
		var err error
		if cfg, err = LoadConfig(*configPath); err != nil {
			fmt.Fprintf(stderr, "parallax-roudi: %v\n", err)
			return 1
		}
	}
	if *domain != "" {
		cfg.Domain = *domain
	}
	if *socket != "" {
		cfg.Socket = *socket
	}
	if *runtimeDir != "" {
		cfg.RuntimeDir = *runtimeDir
	}
	if *logLevel != "" {
		cfg.LogLevel = *logLevel
	}
	if err := cfg.Validate(); err != nil {
		fmt.Fprintf(stderr, "parallax-roudi: invalid configuration: %v\n", err)
		return 1
	}
	hopts := &slog.HandlerOptions{Level: cfg.SlogLevel()}
	var h slog.Handler = slog.NewTextHandler(stderr, hopts)
	if *logFormat == "json" {
		h = slog.NewJSONHandler(stderr, hopts)
	} else if *logFormat != "text" {
		fmt.Fprintf(stderr, "parallax-roudi: -log-format must be text or json, got %q\n", *logFormat)
		return 2
	}
	log := slog.New(h)
	srv, err := New(cfg, Options{Logger: log, Monitor: monMode, Nice: *nice})
	if err != nil {
		log.Error("router not started", "err", err)
		if errors.Is(err, discovery.ErrRouterRunning) {
			return 3 // another router serves the domain
		}
		return 1
	}
	defer srv.Close()
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if *metricsAddr != "" {
		ln, err := net.Listen("tcp", *metricsAddr)
		if err != nil {
			log.Error("router not started: metrics endpoint", "err", err)
			return 1
		}
		log.Info("metrics endpoint", "url", "http://"+ln.Addr().String()+"/metrics")
		go func() {
			if err := srv.ServeMetrics(ctx, ln); err != nil {
				log.Error("metrics endpoint stopped", "err", err)
			}
		}()
	}
	if err := srv.Serve(ctx); err != nil {
		log.Error("router stopped", "err", err)
		if errors.Is(err, discovery.ErrRouterRunning) {
			return 3
		}
		return 1
	}
	return 0
}
