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
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/parallax-ipc/parallax"
	"github.com/parallax-ipc/parallax/internal/discovery"
	"github.com/parallax-ipc/parallax/internal/wire"
	"github.com/parallax-ipc/parallax/roudi"
)

// What a restarted router must not do before its survivors have resumed.

// TestRestartShortClientKeepsSurvivorsChunks: after a SIGKILL and a
// restart, clients that connect and leave before the survivors resumed (a
// `parallax pools`, say) must not make the new router believe the domain is
// idle: nothing the survivors hold or have queued may be swept (the idle
// sweep exists only in the shared model, deleted in step 14), and in both
// models the stream goes on without a gap.
func TestRestartShortClientKeepsSurvivorsChunks(t *testing.T) {
	if *noDaemon {
		t.Skip("needs the parallax-roudi binary (not with -parallax.no-daemon)")
	}
	for _, m := range []struct{ name, cfg string }{{"owned", ownedConfig}} {
		t.Run(m.name, func(t *testing.T) { restartShortClientKeepsSurvivorsChunks(t, m.cfg) })
	}
}

func restartShortClientKeepsSurvivorsChunks(t *testing.T, cfgText string) {
	cli, _ := buildCLI(t)
	dir, cfgPath, sock, domain := restartFilesWith(t, "rg", cfgText)

	r1 := startKillableRouter(t, cfgPath, domain, sock, "-runtime-dir", dir)
	sub, pub := startStream(t, sock)

	killRouter(t, r1)
	sub.expect("progress") // flowing without a router

	srv, ctx := startSuccessorWith(t, cfgText, domain, sock, dir, 20*time.Second)
	require.True(t, srv.Adopted(), "the new router must adopt the surviving segments")

	// Short-lived clients, at once and repeatedly, until the survivors'
	// connection is back: in-process dials (the fastest) and the CLI.
	var shorts atomic.Int64
	stopShort := make(chan struct{})
	var wg sync.WaitGroup
	wg.Add(2)
	go func() {
		defer wg.Done()
		for {
			select {
			case <-stopShort:
				return
			default:
			}
			dctx, dcancel := context.WithTimeout(ctx, 5*time.Second)
			c, err := discovery.Dial(dctx, discovery.DialOptions{Socket: sock, Name: "short"})
			dcancel()
			if err != nil {
				continue
			}
			id := c.Welcome().ClientID
			c.Close()
			shorts.Add(1)
			// Let the router see the departure and tick twice with no
			// connection at all, as after a lone CLI call.
			waitSnapshot(ctx, srv, func(s roudi.Snapshot) bool {
				for _, ci := range s.Clients {
					if uint16(ci.ID) == id {
						return false
					}
				}
				return true
			})
			snap, err := srv.Snapshot(ctx)
			if err != nil {
				return
			}
			waitSnapshot(ctx, srv, func(s roudi.Snapshot) bool { return s.Tick >= snap.Tick+2 })
		}
	}()
	go func() {
		defer wg.Done()
		for range 3 {
			select {
			case <-stopShort:
				return
			default:
			}
			if out, err := exec.Command(cli, "pools", "-socket", sock).CombinedOutput(); err == nil {
				shorts.Add(1)
			} else {
				t.Logf("parallax pools: %v\n%s", err, out)
			}
		}
	}()

	waitCtx, waitCancel := context.WithTimeout(ctx, 30*time.Second)
	defer waitCancel()
	for {
		snap, err := srv.Snapshot(waitCtx)
		require.NoError(t, err, "survivors did not resume")
		if len(snap.Connections) == 1 {
			break
		}
		select {
		case <-waitCtx.Done():
			t.Fatalf("survivors did not resume: %v", snap)
		case <-time.After(2 * time.Millisecond):
		}
	}
	close(stopShort)
	wg.Wait()
	require.NotZero(t, shorts.Load(), "no short-lived client ran")
	t.Logf("%d short-lived clients came and went around the resume", shorts.Load())

	// The stream goes on without a gap.
	sub.expect("progress")
	sub.expect("progress")
	got, first, last := stopStream(t, sub, pub)
	require.Equal(t, uint64(1), first)
	require.Equal(t, last, got, "the subscriber lost samples (%d of %d)", last-got, last)
	pub.wait()
	sub.wait()
	(&router{srv: srv}).requirePoolsFree(t)
}

// TestSecondRouterSameDomainExits: a router started for a live router's
// domain under another socket exits with code 3 naming the live router
// (pid, socket) and takes nothing over: the live domain's stream goes on
// without a loss. A router of another domain runs beside it.
func TestSecondRouterSameDomainExits(t *testing.T) {
	if *noDaemon {
		t.Skip("needs the parallax-roudi binary (not with -parallax.no-daemon)")
	}
	live := startBinaryRouter(t, testConfig)
	sub, pub := startStream(t, live.Socket)

	dctx, dcancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer dcancel()
	c, err := discovery.Dial(dctx, discovery.DialOptions{Socket: live.Socket})
	require.NoError(t, err)
	livePID := c.Welcome().RouterPID
	c.Close()

	dir := t.TempDir()
	cfgPath := filepath.Join(dir, "roudi.toml")
	require.NoError(t, os.WriteFile(cfgPath, []byte(testConfig), 0o600))
	second := exec.Command(roudiBin, "-config", cfgPath, "-domain", live.Domain, "-runtime-dir", live.RuntimeDir,
		"-socket", filepath.Join(dir, "second.sock"))
	stderr, err := second.StderrPipe()
	require.NoError(t, err)
	require.NoError(t, second.Start())
	var log strings.Builder
	started := make(chan bool, 1)
	go func() {
		sc := bufio.NewScanner(stderr)
		ready := false
		for sc.Scan() {
			log.WriteString(sc.Text() + "\n")
			if strings.Contains(sc.Text(), `msg="router ready"`) && !ready {
				ready = true
				started <- true
			}
		}
		if !ready {
			started <- false
		}
	}()
	select {
	case ok := <-started:
		if ok {
			_ = second.Process.Kill() // our own child, by PID
			_ = second.Wait()
			t.Fatal("a second router of a live domain started")
		}
	case <-time.After(readyTimeout):
		_ = second.Process.Kill()
		_ = second.Wait()
		t.Fatal("the second router neither exited nor started")
	}
	err = second.Wait()
	var exit *exec.ExitError
	require.ErrorAs(t, err, &exit, "log:\n%s", log.String())
	require.Equal(t, 3, exit.ExitCode(), "log:\n%s", log.String())
	require.Contains(t, log.String(), fmt.Sprintf("pid %d", livePID), "the message names the live router's pid")
	require.Contains(t, log.String(), live.Socket, "the message names the live router's socket")

	// Another domain name runs beside it.
	other := startBinaryRouter(t, testConfig)
	require.NotEqual(t, live.Domain, other.Domain)
	oc, err := discovery.Dial(dctx, discovery.DialOptions{Socket: other.Socket})
	require.NoError(t, err)
	require.Equal(t, other.Domain, oc.Welcome().Domain)
	oc.Close()

	// The live domain's stream never stopped.
	sub.expect("progress")
	sub.expect("progress")
	got, first, last := stopStream(t, sub, pub)
	require.Equal(t, uint64(1), first)
	require.Equal(t, last, got, "the subscriber lost samples")
	pub.wait()
	sub.wait()
}

// TestResumeRefusesStranger: after a router restart, a connection that
// names a reserved client id (and, in the shared model, the right
// management inode; the owned model has none), from another process and
// without the client's token, is refused with ErrPermissionDenied; the
// real clients then resume and lose nothing. In both models.
func TestResumeRefusesStranger(t *testing.T) {
	if *noDaemon {
		t.Skip("needs the parallax-roudi binary (not with -parallax.no-daemon)")
	}
	for _, m := range []struct{ name, cfg string }{{"owned", ownedConfig}} {
		t.Run(m.name, func(t *testing.T) { resumeRefusesStranger(t, m.cfg) })
	}
}

func resumeRefusesStranger(t *testing.T, cfgText string) {
	dir, cfgPath, sock, domain := restartFilesWith(t, "ra", cfgText)

	r1 := startKillableRouter(t, cfgPath, domain, sock, "-runtime-dir", dir)
	sub, pub := startStream(t, sock) // clients 1 and 2

	// Kill the router, and stop the survivors (our own children, by PID)
	// so that the stranger tries first.
	killRouter(t, r1)
	for _, p := range []*proc{sub, pub} {
		require.NoError(t, p.cmd.Process.Signal(syscall.SIGSTOP))
	}
	stopped := true
	cont := func() {
		if stopped {
			for _, p := range []*proc{sub, pub} {
				_ = p.cmd.Process.Signal(syscall.SIGCONT)
			}
			stopped = false
		}
	}
	t.Cleanup(cont)

	srv, ctx := startSuccessorWith(t, cfgText, domain, sock, dir, 20*time.Second)
	require.True(t, srv.Adopted())

	rctx, rcancel := context.WithTimeout(ctx, 10*time.Second)
	defer rcancel()
	stranger, err := discovery.Dial(rctx, discovery.DialOptions{Socket: sock, Name: "stranger"})
	require.NoError(t, err)
	defer stranger.Close()
	for _, id := range []uint16{1, 2} {
		for _, tok := range [][]byte{nil, make([]byte, 32)} {
			_, _, err := stranger.Request(rctx, &wire.Resume{OldClient: id, Token: tok}, nil)
			require.ErrorIs(t, err, parallax.ErrPermissionDenied, "a stranger resumed as client %d", id)
		}
	}

	// The real clients resume and the stream goes on without a loss.
	cont()
	require.True(t, waitSnapshot(rctx, srv, func(s roudi.Snapshot) bool { return len(s.Connections) == 1 }),
		"the real clients did not resume")
	sub.expect("progress")
	got, _, last := stopStream(t, sub, pub)
	require.Equal(t, last, got, "the subscriber lost samples")
	pub.wait()
	sub.wait()
	stranger.Close()
	(&router{srv: srv}).requirePoolsFree(t)
}
