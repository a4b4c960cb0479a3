package main

import (
	"bufio"
	"encoding/json"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/parallax-ipc/parallax/internal/routertest"
	"github.com/parallax-ipc/parallax/publisher"
	"github.com/parallax-ipc/parallax/services"
	"github.com/parallax-ipc/parallax/subscriber"
)

func TestServicesCommand(t *testing.T) {
	srv := routertest.Start(t, "")
	sock := sockFlag(srv.SocketPath())
	ctx := t.Context()
	sub, err := subscriber.New(ctx, "cli/svc", subscriber.Options{Socket: srv.SocketPath(), QueueCapacity: 8, Policy: subscriber.BlockProducer})
	require.NoError(t, err)
	defer sub.Close()
	pub, err := publisher.New(ctx, "cli/svc", publisher.Options{Socket: srv.SocketPath()})
	require.NoError(t, err)
	defer pub.Close()

	code, out, errs := runCLI(t, "", "services", sock)
	require.Equal(t, exitOK, code, errs)
	lines := strings.Split(strings.TrimSpace(out), "\n")
	require.Len(t, lines, 2, out)
	require.Regexp(t, `^SERVICE\s+KIND\s+TYPE\s+ACCESS\s+PUBLISHERS\s+SUBSCRIBERS$`, lines[0])
	require.Regexp(t, `^cli/svc\s+topic\s+bytes\s+pub,sub\s+\S+\[\d+\]\s+\S+\[\d+\]:8/block-producer$`, lines[1])

	code, out, errs = runCLI(t, "", "services", "-json", sock)
	require.Equal(t, exitOK, code, errs)
	var list []services.Service
	require.NoError(t, json.Unmarshal([]byte(out), &list), out)
	require.Len(t, list, 1)
	require.Equal(t, services.KindTopic, list[0].Kind)
	require.Len(t, list[0].Subscribers, 1)
	require.Contains(t, out, `"Policy": "block-producer"`)

	code, out, _ = runCLI(t, "", "help", "services")
	require.Equal(t, exitOK, code)
	for _, f := range []string{"-json", "-watch", "-domain", "-socket"} {
		require.Contains(t, out, f)
	}

	code, _, errs = runCLI(t, "", "services", "extra", sock)
	require.Equal(t, exitUsage, code)
	require.Contains(t, errs, "unexpected argument")
}

// services -watch streams JSON lines until interrupted, then exits 0.
func TestServicesWatchCommand(t *testing.T) {
	srv := routertest.Start(t, "")
	ctx := t.Context()
	p1, err := publisher.New(ctx, "cli/first", publisher.Options{Socket: srv.SocketPath()})
	require.NoError(t, err)
	defer p1.Close()

	cmd, err := childCommand("services", "-watch", "-json", sockFlag(srv.SocketPath()))
	require.NoError(t, err)
	stdout, err := cmd.StdoutPipe()
	require.NoError(t, err)
	require.NoError(t, cmd.Start())
	defer func() { _ = cmd.Process.Kill(); _ = cmd.Wait() }()
	lines := make(chan string, 16)
	go func() {
		sc := bufio.NewScanner(stdout)
		for sc.Scan() {
			lines <- sc.Text()
		}
		close(lines)
	}()
	next := func() map[string]any {
		t.Helper()
		select {
		case l, ok := <-lines:
			require.True(t, ok, "output ended")
			var v map[string]any
			require.NoError(t, json.Unmarshal([]byte(l), &v), l)
			return v
		case <-time.After(20 * time.Second):
			t.Fatal("no line within 20 s")
		}
		return nil
	}
	v := next()
	require.Equal(t, "appeared", v["Kind"])
	require.Equal(t, "cli/first", v["Service"].(map[string]any)["Name"])

	p2, err := publisher.New(ctx, "cli/second", publisher.Options{Socket: srv.SocketPath()})
	require.NoError(t, err)
	v = next()
	require.Equal(t, "appeared", v["Kind"])
	require.Equal(t, "cli/second", v["Service"].(map[string]any)["Name"])
	require.NoError(t, p2.Close())
	v = next()
	require.Equal(t, "disappeared", v["Kind"])

	require.NoError(t, cmd.Process.Signal(syscall.SIGINT))
	require.NoError(t, cmd.Wait(), "interrupted -watch exits 0")
}
