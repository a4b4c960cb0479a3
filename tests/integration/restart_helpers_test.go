//go:build integration

package integration

import (
	"bufio"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/parallax-ipc/parallax/roudi"
)

// Helpers of the restart tests: a router binary to SIGKILL, its in-process
// successor, and an rspub/rssub stream across them.

// restartFilesWith makes a directory for a router of its own: the config
// cfg written to it, a socket path in it and a fresh domain name with
// prefix.
func restartFilesWith(t *testing.T, prefix, cfg string) (dir, cfgPath, sock, domain string) {
	t.Helper()
	dir = t.TempDir()
	cfgPath = filepath.Join(dir, "roudi.toml")
	require.NoError(t, os.WriteFile(cfgPath, []byte(cfg), 0o600))
	sock = filepath.Join(dir, "roudi.sock")
	domain = fmt.Sprintf("%s-%d-%d", prefix, os.Getpid(), domainSeq.Add(1))
	return dir, cfgPath, sock, domain
}

// startRestartableRouter is the start of a router-restart test: it skips
// without the parallax-roudi binary, marks the test parallel, makes the
// router's files (restartFilesWith) and starts a killable router on them
// with its runtime directory there.
func startRestartableRouter(t *testing.T, prefix, cfg string) (dir, sock, domain string, r *exec.Cmd) {
	t.Helper()
	if *noDaemon {
		t.Skip("needs the parallax-roudi binary (not with -parallax.no-daemon)")
	}
	t.Parallel()
	dir, cfgPath, sock, domain := restartFilesWith(t, prefix, cfg)
	return dir, sock, domain, startKillableRouter(t, cfgPath, domain, sock, "-runtime-dir", dir)
}

// startKillableRouter runs parallax-roudi on domain and sock with the test
// config, waits for its ready line and returns it; the test SIGKILLs it.
// Cleanup kills and reaps it (our own child, by PID) if it still runs.
func startKillableRouter(t *testing.T, cfgPath, domain, sock string, args ...string) *exec.Cmd {
	t.Helper()
	r := exec.Command(roudiBin, append([]string{"-config", cfgPath, "-domain", domain, "-socket", sock}, args...)...)
	stderr, err := r.StderrPipe()
	require.NoError(t, err)
	require.NoError(t, r.Start())
	ready := make(chan struct{})
	go func() {
		sc := bufio.NewScanner(stderr)
		once := sync.Once{}
		for sc.Scan() {
			if strings.Contains(sc.Text(), `msg="router ready"`) {
				once.Do(func() { close(ready) })
			}
		}
	}()
	t.Cleanup(func() {
		_ = r.Process.Kill()
		_ = r.Wait()
	})
	select {
	case <-ready:
	case <-time.After(readyTimeout):
		t.Fatal("router not ready")
	}
	return r
}

// killRouter SIGKILLs a router started by startKillableRouter and reaps it.
func killRouter(t *testing.T, r *exec.Cmd) {
	t.Helper()
	require.NoError(t, r.Process.Signal(syscall.SIGKILL))
	_ = r.Wait()
}

// startSuccessorWith starts an in-process router with the config text
// cfgText on the domain, socket and runtime directory of a killed one, with
// grace as its resume grace, and waits until it is ready. It returns the
// router and a context that ends when cleanup stops it.
func startSuccessorWith(t *testing.T, cfgText, domain, sock, dir string, grace time.Duration) (*roudi.Server, context.Context) {
	t.Helper()
	cfg, err := roudi.ParseConfig([]byte(cfgText))
	require.NoError(t, err)
	cfg.Domain, cfg.Socket, cfg.RuntimeDir = domain, sock, dir
	srv, err := roudi.New(cfg, roudi.Options{ResumeGrace: grace})
	require.NoError(t, err)
	ctx, cancel := context.WithCancel(context.Background())
	served := make(chan error, 1)
	go func() { served <- srv.Serve(ctx) }()
	t.Cleanup(func() {
		cancel()
		_ = <-served
		srv.Close()
	})
	<-srv.Ready()
	return srv, ctx
}

// startStream starts an rssub (counting stale takes) and an rspub on sock
// and waits until samples flow.
func startStream(t *testing.T, sock string) (sub, pub *proc) {
	t.Helper()
	sub = spawn(t, "sub", "rssub", "-socket", sock, "-count-stale")
	sub.expect("ready")
	pub = spawn(t, "pub", "rspub", "-socket", sock)
	pub.expect("ready")
	sub.expect("progress")
	return sub, pub
}

// stopStream stops a stream started by startStream, requires that the
// subscriber took no stale reference and saw no corrupted or reordered
// sample, and returns how many samples it got, its first sequence number
// and the publisher's last. The caller waits for both.
func stopStream(t *testing.T, sub, pub *proc) (got, first, last uint64) {
	t.Helper()
	pub.send("stop")
	last = atoi(t, pub.expect("published ")[0])
	sub.send(fmt.Sprintf("stop %d", last))
	f := sub.expect("done ")
	require.Equal(t, "0", f[3], "the subscriber took stale references")
	require.Equal(t, "0", f[2], "the subscriber saw corrupted or reordered samples")
	return atoi(t, f[0]), atoi(t, f[1]), last
}

// waitSnapshot polls srv's registry until cond holds or ctx ends.
func waitSnapshot(ctx context.Context, srv *roudi.Server, cond func(roudi.Snapshot) bool) bool {
	for {
		snap, err := srv.Snapshot(ctx)
		if err != nil {
			return false
		}
		if cond(snap) {
			return true
		}
		select {
		case <-ctx.Done():
			return false
		case <-time.After(time.Millisecond):
		}
	}
}
