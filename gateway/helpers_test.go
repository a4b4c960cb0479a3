package gateway_test

import (
	"context"
	"encoding/binary"
	"fmt"
	"hash/crc32"
	"log/slog"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/stretchr/testify/require"

	"github.com/parallax-ipc/parallax/gateway"
	"github.com/parallax-ipc/parallax/internal/routertest"
	"github.com/parallax-ipc/parallax/roudi"
)

// startNATS runs an embedded NATS server on 127.0.0.1 (port -1 = random),
// shut down by t.Cleanup.
func startNATS(t testing.TB, port int, maxPayload int32) *server.Server {
	t.Helper()
	return startNATSOpts(t, &server.Options{Port: port, MaxPayload: maxPayload})
}

// startNATSOpts is startNATS with more server options (JetStream).
func startNATSOpts(t testing.TB, o *server.Options) *server.Server {
	t.Helper()
	o.Host, o.NoLog, o.NoSigs = "127.0.0.1", true, true
	ns, err := server.NewServer(o)
	require.NoError(t, err)
	go ns.Start()
	t.Cleanup(func() { ns.Shutdown(); ns.WaitForShutdown() })
	require.True(t, ns.ReadyForConnections(10*time.Second), "NATS server not ready")
	return ns
}

// logBuf collects a gateway's log lines for assertions.
type logBuf struct {
	mu sync.Mutex
	b  strings.Builder
	t  testing.TB
}

func (l *logBuf) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if testing.Verbose() {
		l.t.Log(strings.TrimRight(string(p), "\n"))
	}
	return l.b.Write(p)
}

func (l *logBuf) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

// startGateway runs a gateway until the test ends and waits until it is
// ready. The returned stop function stops it early (idempotent).
func startGateway(t testing.TB, opts gateway.Options) (*gateway.Gateway, *logBuf, func()) {
	t.Helper()
	lb := &logBuf{t: t}
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.NewTextHandler(lb, &slog.HandlerOptions{Level: slog.LevelDebug}))
	}
	if opts.MinBackoff == 0 {
		opts.MinBackoff = 10 * time.Millisecond
	}
	if opts.MaxBackoff == 0 {
		opts.MaxBackoff = 200 * time.Millisecond
	}
	if opts.ReportInterval == 0 {
		opts.ReportInterval = 20 * time.Millisecond
	}
	if strings.Contains(t.Name(), "/"+natsGoPath) {
		opts.ImportWithNATSGo = true
	}
	g, err := gateway.New(opts)
	require.NoError(t, err)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- g.Run(ctx) }()
	var once sync.Once
	stop := func() {
		once.Do(func() {
			cancel()
			require.NoError(t, <-done)
		})
	}
	t.Cleanup(stop)
	select {
	case <-g.Ready():
	case err := <-done:
		t.Fatalf("gateway stopped before ready: %v", err)
	case <-time.After(20 * time.Second):
		t.Fatalf("gateway not ready after 20s; log:\n%s", lb)
	}
	if len(opts.Import) > 0 && opts.Stream == "" && len(opts.NATSOptions) == 0 && opts.Logger == nil {
		want := "importing through the gateway's own NATS connection"
		if opts.ImportWithNATSGo {
			want = "importing through nats.go"
		}
		require.Contains(t, lb.String(), want)
	}
	return g, lb, stop
}

// natsGoPath names the subtests of forImportPaths whose gateways import
// through nats.go ([gateway.Options].ImportWithNATSGo, set by
// startGateway from the test's name).
const natsGoPath = "path=nats.go"

// forImportPaths runs test once per import path: path=raw (the gateway's
// own NATS connection, the default) and path=nats.go.
func forImportPaths(t *testing.T, test func(t *testing.T)) {
	for _, p := range []string{"path=raw", natsGoPath} {
		t.Run(p, func(t *testing.T) {
			t.Parallel()
			test(t)
		})
	}
}

// eventually waits for cond with a deadline, re-checking on a short ticker.
func eventually(t testing.TB, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	tick := time.NewTicker(2 * time.Millisecond)
	defer tick.Stop()
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		<-tick.C
	}
}

var crcTable = crc32.MakeTable(crc32.Castagnoli)

// payload returns message seq of n bytes (n >= 8): seq then a pattern.
func payload(seq uint64, n int) []byte {
	b := make([]byte, n)
	binary.LittleEndian.PutUint64(b, seq)
	for i := 8; i < n; i++ {
		b[i] = byte(seq*31 + uint64(i)*7)
	}
	return b
}

// router is a restartable in-process router on a fixed socket.
type router struct {
	t   testing.TB
	cfg *roudi.Config
	srv *roudi.Server
}

var routerSeq sync.Mutex
var routerN int

func newRouter(t testing.TB) *router {
	t.Helper()
	return newRouterTOML(t, routertest.Small)
}

// withModel returns toml in the memory model of cfg (a
// routertest.Models configuration).
func withModel(toml, cfg string) string {
	if cfg == routertest.Owned {
		return toml + "\n[memory]\nmodel = \"owned\"\n"
	}
	return toml
}

// newRouterTOML is newRouter with the given pool configuration.
func newRouterTOML(t testing.TB, toml string) *router {
	t.Helper()
	cfg, err := roudi.ParseConfig([]byte(toml))
	require.NoError(t, err)
	routerSeq.Lock()
	routerN++
	cfg.Domain = fmt.Sprintf("gw%d-%d", time.Now().UnixNano()%1e6, routerN)
	routerSeq.Unlock()
	cfg.Socket = filepath.Join(t.TempDir(), "roudi.sock")
	cfg.RuntimeDir = filepath.Dir(cfg.Socket)
	r := &router{t: t, cfg: cfg}
	r.start()
	t.Cleanup(r.stop)
	return r
}

func (r *router) start() {
	r.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	srv, err := roudi.Start(ctx, r.cfg, roudi.Options{Logger: slog.New(slog.DiscardHandler)})
	require.NoError(r.t, err)
	r.srv = srv
}

func (r *router) stop() {
	if r.srv == nil {
		return
	}
	require.NoError(r.t, r.srv.Close())
	r.srv = nil
}
