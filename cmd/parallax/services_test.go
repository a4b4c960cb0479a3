package main

import (
	"bufio"
	"encoding/json"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/parallax-ipc/parallax/event"
	"github.com/parallax-ipc/parallax/internal/routertest"
	"github.com/parallax-ipc/parallax/publisher"
	"github.com/parallax-ipc/parallax/rpc"
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

// services lists request/response and event services with their own
// words (clients/servers, notifiers/listeners, call/serve,
// notify/listen), and -watch reports an event service appearing with its
// first listener and disappearing with its last endpoint.
func TestServicesRPCAndEventsCommand(t *testing.T) {
	srv := routertest.Start(t, "")
	sock := sockFlag(srv.SocketPath())
	ctx := t.Context()
	ropts := rpc.Options{Socket: srv.SocketPath()}
	s, err := rpc.NewServer(ctx, "cli/plan", ropts)
	require.NoError(t, err)
	defer s.Close()
	c, err := rpc.NewClient(ctx, "cli/plan", ropts)
	require.NoError(t, err)
	defer c.Close()
	require.NoError(t, c.WaitForServers(ctx, 1))
	eopts := event.Options{Socket: srv.SocketPath()}
	n, err := event.NewNotifier(ctx, "cli/frame", eopts)
	require.NoError(t, err)
	defer n.Close()
	for range 2 {
		l, err := event.NewListener(ctx, "cli/frame", eopts)
		require.NoError(t, err)
		defer l.Close()
	}
	require.NoError(t, n.WaitForListeners(ctx, 2))

	code, out, errs := runCLI(t, "", "services", sock)
	require.Equal(t, exitOK, code, errs)
	lines := strings.Split(strings.TrimSpace(out), "\n")
	require.Len(t, lines, 3, out)
	require.Regexp(t, `^cli/frame\s+event\s+bytes\s+notify,listen\s+1 notifier: \S+\[\d+\]\s+2 listeners: \S+\[\d+\],\S+\[\d+\]$`, lines[1])
	require.Regexp(t, `^cli/plan\s+request-response\s+bytes->bytes\s+call,serve\s+1 client: \S+\[\d+\]\s+1 server: \S+\[\d+\]$`, lines[2])

	code, out, errs = runCLI(t, "", "services", "-json", sock)
	require.Equal(t, exitOK, code, errs)
	var list []services.Service
	require.NoError(t, json.Unmarshal([]byte(out), &list), out)
	require.Len(t, list, 2)
	require.Equal(t, services.KindEvent, list[0].Kind)
	require.Len(t, list[0].Publishers, 1)
	require.Len(t, list[0].Subscribers, 2)
	require.Contains(t, out, `"Kind": "event"`)

	cmd, err := childCommand("services", "-watch", sock)
	require.NoError(t, err)
	stdout, err := cmd.StdoutPipe()
	require.NoError(t, err)
	require.NoError(t, cmd.Start())
	defer func() { _ = cmd.Process.Kill(); _ = cmd.Wait() }()
	lc := make(chan string, 64)
	go func() {
		sc := bufio.NewScanner(stdout)
		for sc.Scan() {
			lc <- sc.Text()
		}
		close(lc)
	}()
	// nextLine returns the next line naming service name.
	nextLine := func(name string) string {
		t.Helper()
		for {
			select {
			case l, ok := <-lc:
				require.True(t, ok, "output ended")
				if strings.Contains(l, " "+name+" ") {
					return l
				}
			case <-time.After(20 * time.Second):
				t.Fatal("no line within 20 s")
			}
		}
	}
	require.Regexp(t, `^appeared\s+event cli/frame type=bytes access=notify,listen notifiers=1 notifier: \S+ listeners=2 listeners: \S+$`, nextLine("cli/frame"))
	l3, err := event.NewListener(ctx, "cli/other", eopts)
	require.NoError(t, err)
	require.Regexp(t, `^appeared\s+event cli/other .* notifiers=0 notifiers listeners=1 listener: \S+$`, nextLine("cli/other"))
	require.NoError(t, l3.Close())
	require.Regexp(t, `^disappeared\s+event cli/other `, nextLine("cli/other"))
	require.NoError(t, cmd.Process.Signal(syscall.SIGINT))
	require.NoError(t, cmd.Wait(), "interrupted -watch exits 0")
}
