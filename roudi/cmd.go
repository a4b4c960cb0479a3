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

	"github.com/parallax-ipc/parallax"
	"github.com/parallax-ipc/parallax/discovery"
	"github.com/parallax-ipc/parallax/internal/buildinfo"
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
	checkConfig := fs.Bool("check-config", false, "validate the configuration (-config or the embedded default, with -domain, -socket, -runtime-dir and -log-level applied), report \"ok\" and a summary or the problem on stderr, and exit 0 (valid) or 2 (invalid or unreadable)")
	showVersion := fs.Bool("version", false, "print the version, module version and commit, and exit")
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
	if *showVersion {
		fmt.Fprintf(os.Stdout, "parallax-roudi %s\n%s\n", parallax.Version, buildinfo.Read())
		return 0
	}
	if *checkConfig {
		return checkConfigMain(stderr, *configPath, *domain, *socket, *runtimeDir, *logLevel)
	}
	cfg := DefaultConfig()
	if *configPath != "" {
		var err error
		if cfg, err = LoadConfig(*configPath); err != nil {
			fmt.Fprintf(stderr, "parallax-roudi: %v\n", err)
			return 1
		}
	}
	overrideConfig(cfg, *domain, *socket, *runtimeDir, *logLevel)
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

// overrideConfig applies the -domain, -socket, -runtime-dir and -log-level
// flags (those given, non-empty) to cfg.
func overrideConfig(cfg *Config, domain, socket, runtimeDir, logLevel string) {
	if domain != "" {
		cfg.Domain = domain
	}
	if socket != "" {
		cfg.Socket = socket
	}
	if runtimeDir != "" {
		cfg.RuntimeDir = runtimeDir
	}
	if logLevel != "" {
		cfg.LogLevel = logLevel
	}
}

// checkConfigMain is parallax-roudi -check-config: it loads the config the
// router would run (path, or the embedded default when path is empty, plus
// the flag overrides), validates it and reports "ok" with a one-line
// summary (exit 0) or the problem, each [*ConfigError] naming its key
// (exit 2).
func checkConfigMain(stderr io.Writer, path, domain, socket, runtimeDir, logLevel string) int {
	cfg, source := DefaultConfig(), "embedded default config"
	if path != "" {
		var err error
		if cfg, err = LoadConfig(path); err != nil {
			fmt.Fprintf(stderr, "parallax-roudi: invalid configuration: %v\n", err)
			return 2
		}
		source = path
	}
	overrideConfig(cfg, domain, socket, runtimeDir, logLevel)
	if err := cfg.Validate(); err != nil {
		fmt.Fprintf(stderr, "parallax-roudi: invalid configuration: %s: %v\n", source, err)
		return 2
	}
	fmt.Fprintf(stderr, "ok: %s: domain %q, socket %s (mode %v, directory %v), publishers %v payload x %d loans by default, up to %v each, %v in all, %d access rules, log level %s\n",
		source, cfg.Domain, cfg.SocketPath(), cfg.SocketMode, cfg.SocketDirMode, cfg.Publishers.DefaultMaxPayload, cfg.Publishers.DefaultMaxLoans,
		cfg.Limits.MaxPublisherBytes, cfg.Limits.MaxSharedBytes, len(cfg.Access), cfg.LogLevel)
	return 0
}
