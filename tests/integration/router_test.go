//go:build integration

package integration

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/parallax-ipc/parallax/internal/routertest"
	"github.com/parallax-ipc/parallax/roudi"
)

// testConfig is the configuration of every test router.
const testConfig = `
[limits]
max_history = 64
max_queue_capacity = 4096
`

// readyTimeout bounds how long a router may take to print its ready line.
const readyTimeout = 30 * time.Second

var domainSeq atomic.Int64

// A router is one running router for a test: the real binary, or an
// in-process server under -parallax.no-daemon (then srv is set).
type router struct {
	Socket     string
	Domain     string
	RuntimeDir string // of the binary router: its domain lock
	PID        int    // of the binary router (0 for an in-process one)
	srv        *roudi.Server
}

// startRouter starts a router with its own domain and socket in
// t.TempDir(), waits until it is ready and stops it in t.Cleanup.
func startRouter(t *testing.T) *router {
	t.Helper()
	return startRouterWith(t, testConfig)
}

// startRouterWith is startRouter with another TOML configuration.
func startRouterWith(t *testing.T, config string) *router {
	t.Helper()
	if *noDaemon {
		srv := routertest.Start(t, config)
		return &router{Socket: srv.SocketPath(), Domain: srv.Config().Domain, srv: srv}
	}
	return startBinaryRouter(t, config)
}

// startInProcessRouter starts an in-process router (whatever the flags)
// with config, for tests that audit the pools or the owned segments.
func startInProcessRouter(t *testing.T, config string) *router {
	t.Helper()
	srv := routertest.Start(t, config)
	return &router{Socket: srv.SocketPath(), Domain: srv.Config().Domain, srv: srv}
}

// startBinaryRouter runs parallax-roudi with a config file, domain and
// socket of its own. It waits for the "router ready" log line on stderr;
// cleanup sends SIGTERM to its PID and checks that it exits 0 and removes
// its socket.
func startBinaryRouter(t *testing.T, config string) *router {
	t.Helper()
	dir := t.TempDir()
	cfgPath := filepath.Join(dir, "roudi.toml")
	require.NoError(t, os.WriteFile(cfgPath, []byte(config), 0o600))
	r := &router{
		Socket:     filepath.Join(dir, "roudi.sock"),
		Domain:     fmt.Sprintf("it-%d-%d", os.Getpid(), domainSeq.Add(1)),
		RuntimeDir: dir,
	}
	cmd := exec.Command(roudiBin, "-config", cfgPath, "-domain", r.Domain, "-socket", r.Socket, "-runtime-dir", r.RuntimeDir, "-log-level", "info")
	stderr, err := cmd.StderrPipe()
	require.NoError(t, err)
	require.NoError(t, cmd.Start(), "start parallax-roudi")
	r.PID = cmd.Process.Pid

	var (
		logMu sync.Mutex
		log   bytes.Buffer
	)
	ready := make(chan struct{})
	drained := make(chan struct{})
	go func() {
		defer close(drained)
		sc := bufio.NewScanner(stderr)
		sc.Buffer(make([]byte, 64<<10), 1<<20)
		seen := false
		for sc.Scan() {
			line := sc.Text()
			logMu.Lock()
			log.WriteString(line + "\n")
			logMu.Unlock()
			if !seen && strings.Contains(line, `msg="router ready"`) {
				seen = true
				close(ready)
			}
		}
		_, _ = io.Copy(io.Discard, stderr)
	}()
	logs := func() string {
		logMu.Lock()
		defer logMu.Unlock()
		return log.String()
	}
	exited := make(chan error, 1)
	go func() {
		<-drained // Wait closes the pipe: read everything first
		exited <- cmd.Wait()
	}()

	t.Cleanup(func() {
		if err := cmd.Process.Signal(syscall.SIGTERM); err != nil && !errors.Is(err, os.ErrProcessDone) {
			t.Errorf("SIGTERM parallax-roudi (pid %d): %v", cmd.Process.Pid, err)
		}
		select {
		case err := <-exited:
			if err != nil {
				t.Errorf("parallax-roudi (pid %d) exited with %v; log:\n%s", cmd.Process.Pid, err, logs())
			}
		case <-time.After(30 * time.Second):
			_ = cmd.Process.Kill()
			_ = <-exited
			t.Errorf("parallax-roudi (pid %d) did not exit within 30s of SIGTERM; log:\n%s", cmd.Process.Pid, logs())
		}
		if _, err := os.Stat(r.Socket); !errors.Is(err, os.ErrNotExist) {
			t.Errorf("parallax-roudi left its socket %s behind (stat: %v)", r.Socket, err)
		}
		if t.Failed() && testing.Verbose() {
			t.Logf("parallax-roudi log:\n%s", logs())
		}
	})

	select {
	case <-ready:
	case err := <-exited:
		exited <- err // let the cleanup see it too
		t.Fatalf("parallax-roudi exited before it was ready (%v); log:\n%s", err, logs())
	case <-time.After(readyTimeout):
		t.Fatalf("parallax-roudi not ready after %v; log:\n%s", readyTimeout, logs())
	}
	return r
}

// requirePoolsFree asserts, for an in-process router, that no publisher
// data segment, live or tombstone, is left once all clients are gone (it
// waits for that with a deadline). For a binary router it does nothing.
func (r *router) requirePoolsFree(t *testing.T) {
	t.Helper()
	if r.srv == nil {
		return
	}
	r.requireNoPublisherSegments(t)
}

// requireNoPublisherSegments waits (with a deadline) until an in-process
// owned-model router lists no publisher data segment: every publisher and
// every tombstone is gone, so every owned byte is freed.
func (r *router) requireNoPublisherSegments(t *testing.T) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	tick := time.NewTicker(5 * time.Millisecond)
	defer tick.Stop()
	for {
		in, err := r.srv.Introspect(t.Context())
		require.NoError(t, err)
		if len(in.PublisherSegments) == 0 {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("publisher segments left after the clients left: %+v", in.PublisherSegments)
		}
		<-tick.C
	}
}
