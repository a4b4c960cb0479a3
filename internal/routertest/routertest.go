// Package routertest starts an in-process router for tests: its own domain
// and socket under t.TempDir(), a small pool configuration, stopped and
// released by t.Cleanup.
package routertest

import (
	"bytes"
	"context"
	"fmt"
	"log/slog"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/parallax-ipc/parallax/roudi"
)

var seq atomic.Int64

// Small is a configuration suited to tests: room for many connections and
// subscribers, messages bounded to 1 MiB.
const Small = `
[limits]
max_connections = 1024
max_subscribers = 512
max_message_size = "1MiB"
`

// Owned is Small; it names the memory model (the only one) for tests that
// said so when there were two.
const Owned = Small

// Start runs a router with the given TOML (Small when empty) and returns it
// once it accepts clients.
func Start(t testing.TB, toml string) *roudi.Server {
	t.Helper()
	return StartWith(t, toml, roudi.Options{})
}

// StartWith is Start with server options (a nil Logger gets the test's).
func StartWith(t testing.TB, toml string, opts roudi.Options) *roudi.Server {
	t.Helper()
	if toml == "" {
		toml = Small
	}
	cfg, err := roudi.ParseConfig([]byte(toml))
	if err != nil {
		t.Fatalf("routertest: config: %v", err)
	}
	cfg.Domain = fmt.Sprintf("t%d-%d", time.Now().UnixNano()%1e6, seq.Add(1))
	cfg.Socket = filepath.Join(t.TempDir(), "roudi.sock")
	cfg.RuntimeDir = filepath.Dir(cfg.Socket)
	log := opts.Logger
	if log == nil {
		if testing.Verbose() {
			log = slog.New(slog.NewTextHandler(tlog{t}, &slog.HandlerOptions{Level: slog.LevelDebug}))
		} else {
			buf := &logBuffer{}
			log = slog.New(slog.NewTextHandler(buf, &slog.HandlerOptions{Level: slog.LevelDebug}))
			t.Cleanup(func() { buf.dumpIfFailed(t) }) // runs after the router stopped
		}
	}
	opts.Logger = log
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	srv, err := roudi.Start(ctx, cfg, opts)
	if err != nil {
		t.Fatalf("routertest: start router: %v", err)
	}
	t.Cleanup(func() {
		if err := srv.Close(); err != nil {
			t.Errorf("routertest: stop router: %v", err)
		}
	})
	return srv
}

type tlog struct{ t testing.TB }

func (w tlog) Write(b []byte) (int, error) {
	w.t.Log(strings.TrimRight(string(b), "\n"))
	return len(b), nil
}

// logBuffer keeps a quiet test's router log, to print if the test fails.
type logBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *logBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

// dumpIfFailed logs the router's log to t if t failed.
func (b *logBuffer) dumpIfFailed(t testing.TB) {
	if !t.Failed() {
		return
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	t.Logf("router log:\n%s", b.buf.String())
}
