package main

import (
	"bytes"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/parallax-ipc/parallax/internal/discovery"
	"github.com/parallax-ipc/parallax/internal/routertest"
	"github.com/parallax-ipc/parallax/internal/testutil"
	"github.com/parallax-ipc/parallax/internal/wire"
	"github.com/parallax-ipc/parallax/publisher"
)

func TestMain(m *testing.M) {
	// A re-executed test binary plays the parallax command (bench's echo
	// child).
	testutil.ChildMain(map[string]func([]string) int{
		"parallax": func(args []string) int { return run(args, os.Stdin, os.Stdout, os.Stderr) },
	})
	childCommand = func(args ...string) (*exec.Cmd, error) {
		exe, err := os.Executable()
		if err != nil {
			return nil, err
		}
		cmd := exec.Command(exe, append([]string{"-test.run=^$", "--"}, args...)...)
		cmd.Env = append(os.Environ(), "PARALLAX_TEST_CHILD=parallax")
		return cmd, nil
	}
	_, _ = os.ReadFile("/proc/self/stat")
	testutil.Main(m)
}

// sock returns the -socket flag for srv.
func sockFlag(path string) string { return "-socket=" + path }

func TestTopPlain(t *testing.T) {
	srv := routertest.Start(t, "")
	code, out, errs := runCLI(t, "", "top", "-n", "2", "-interval", "10ms", sockFlag(srv.SocketPath()))
	require.Equal(t, exitOK, code, errs)
	require.Equal(t, 2, strings.Count(out, "parallax top"), out)
	require.Equal(t, 2, strings.Count(out, "CHUNKS"), out) // the publisher memory header, with no publisher
	require.NotContains(t, out, "POOL", "no router-wide pools table")
	require.Contains(t, out, "no topics")
	require.NotContains(t, out, "\x1b[", "no escapes when stdout is not a terminal")
}

func TestPubEcho(t *testing.T) {
	srv := routertest.Start(t, "")
	sock := sockFlag(srv.SocketPath())
	var (
		wg        sync.WaitGroup
		code      int
		out, errs string
	)
	wg.Add(1)
	go func() {
		defer wg.Done()
		code, out, errs = runCLI(t, "", "echo", "-n", "3", "-timeout", "10s", sock, "dbg/x")
	}()
	c1, _, e1 := runCLI(t, "", "pub", "-subs", "1", sock, "dbg/x", "hello world")
	require.Equal(t, exitOK, c1, e1)
	c2, _, e2 := runCLI(t, "binary\x00\x01", "pub", "-subs", "1", sock, "dbg/x", "-")
	require.Equal(t, exitOK, c2, e2)
	c3, _, e3 := runCLI(t, "", "pub", "-hex", "-subs=1", sock, "dbg/x", "de ad be ef")
	require.Equal(t, exitOK, c3, e3)
	wg.Wait()
	require.Equal(t, exitOK, code, errs)
	require.Regexp(t, `#1 pub=\d+ 11B \S+: hello world\n`, out)
	require.Contains(t, out, "62 69 6e 61 72 79 00 01", "binary rendered as a hex dump")
	require.Contains(t, out, "de ad be ef")
}

func TestEchoTimeout(t *testing.T) {
	srv := routertest.Start(t, "")
	code, _, errs := runCLI(t, "", "echo", "-n", "1", "-timeout", "50ms", sockFlag(srv.SocketPath()), "quiet")
	require.Equal(t, exitFailure, code)
	require.Contains(t, errs, `no message on "quiet" for 50ms`)
}

func TestErrors(t *testing.T) {
	missing := filepath.Join(t.TempDir(), "none.sock")
	for _, args := range [][]string{
		{"topics", "-socket", missing},
		{"clients", "-json", "-socket", missing},
		{"pools", "-socket", missing},
		{"top", "-n", "1", "-socket", missing},
		{"pub", "-socket", missing, "t", "x"},
		{"echo", "-socket", missing, "t"},
	} {
		code, out, errs := runCLI(t, "", args...)
		require.Equal(t, exitNoRouter, code, "%v: %s", args, errs)
		require.Empty(t, out)
		require.Contains(t, errs, "no router at "+missing+" (start one with: parallax-roudi -domain ", args)
	}
	code, _, errs := runCLI(t, "", "topics", "-domain", "nope-"+strings.Repeat("x", 3), "-socket", missing)
	require.Equal(t, exitNoRouter, code)
	require.Contains(t, errs, "parallax-roudi -domain nope-xxx -socket "+missing)

	srv := routertest.Start(t, "")
	for _, args := range [][]string{
		{"pub", sockFlag(srv.SocketPath()), "bad topic!", "x"},
		{"echo", sockFlag(srv.SocketPath()), "a b"},
	} {
		code, _, errs := runCLI(t, "", args...)
		require.Equal(t, exitUsage, code, errs)
		require.Contains(t, errs, "invalid topic name")
		require.Contains(t, errs, "not allowed")
	}
	code, _, errs = runCLI(t, "", "topics", "-domain", "../etc")
	require.Equal(t, exitUsage, code)
	require.Contains(t, errs, `domain "../etc"`)
	code, _, _ = runCLI(t, "", "topics", "extra")
	require.Equal(t, exitUsage, code)
	code, _, errs = runCLI(t, "", "echo", "-format", "rot13", "t")
	require.Equal(t, exitUsage, code)
	require.Contains(t, errs, "-format must be")
}

// TestBinary runs the real parallax binary against the in-process router:
// the exit code and hint survive a real process boundary.
func TestBinary(t *testing.T) {
	if testing.Short() {
		t.Skip("builds the binary; skipped under -short")
	}
	bin := filepath.Join(t.TempDir(), "parallax")
	build := exec.Command("go", "build", "-o", bin, ".")
	build.Stderr = os.Stderr
	require.NoError(t, build.Run())
	// The default (owned) model: the binary lists the publisher's data
	// segment and no router-wide pool.
	srv := routertest.Start(t, "")
	pub, err := publisher.New(t.Context(), "bin/x", publisher.Options{Socket: srv.SocketPath(), MaxPayload: 1024})
	require.NoError(t, err)
	defer pub.Close()
	var out bytes.Buffer
	cmd := exec.Command(bin, "pools", "-json", "-socket", srv.SocketPath())
	cmd.Stdout = &out
	require.NoError(t, cmd.Run())
	var v view
	require.NoError(t, json.Unmarshal(out.Bytes(), &v))
	require.Equal(t, srv.Config().Domain, v.Router.Domain)
	require.NotContains(t, out.String(), `"pools"`)
	require.Len(t, v.PublisherSegments, 1, out.String())
	require.Equal(t, "bin/x", v.PublisherSegments[0].Topic)

	cmd = exec.Command(bin, "topics", "-socket", filepath.Join(t.TempDir(), "x.sock"))
	var errb bytes.Buffer
	cmd.Stderr = &errb
	err = cmd.Run()
	var ee *exec.ExitError
	require.ErrorAs(t, err, &ee)
	require.Equal(t, exitNoRouter, ee.ExitCode())
	require.Contains(t, errb.String(), "start one with: parallax-roudi")
}

func TestBenchEmbedded(t *testing.T) {
	n := "200"
	if testing.Short() {
		n = "20"
	}
	code, out, errs := runCLI(t, "", "bench", "-embedded", "-modes", "blocking,spin", "-sizes", "64,65536", "-n", n)
	require.Equal(t, exitOK, code, errs)
	lines := strings.Split(strings.TrimSpace(out), "\n")
	require.Len(t, lines, 5, out)
	require.Regexp(t, `^MODE\s+SIZE\s+ROUNDS\s+P50\s+P99`, lines[0])
	require.Regexp(t, `^blocking\s+64B\s+\d+\s+\S+s\s+`, lines[1])
	require.Regexp(t, `^spin\s+64KiB\s+`, lines[4])
	require.Contains(t, errs, "bench: blocking 64B", "progress on stderr")
	t.Log("\n" + out)
}

func TestBenchAgainstRouter(t *testing.T) {
	srv := routertest.Start(t, "")
	code, out, errs := runCLI(t, "", "bench", sockFlag(srv.SocketPath()), "-modes", "busy-poll", "-sizes", "4096", "-n", "20")
	require.Equal(t, exitOK, code, errs)
	require.Regexp(t, `(?m)^busy-poll\s+4KiB\s+20\s+`, out)
	code, _, errs = runCLI(t, "", "bench", "-modes", "warp", "-embedded")
	require.Equal(t, exitUsage, code)
	require.Contains(t, errs, `unknown mode "warp"`)
}

func TestGatewaysCommand(t *testing.T) {
	srv := routertest.Start(t, "")
	sock := sockFlag(srv.SocketPath())
	code, out, errs := runCLI(t, "", "gateways", sock)
	require.Equal(t, exitOK, code, errs)
	require.Equal(t, 1, strings.Count(out, "\n"), "only the header without reports: %q", out)

	// A client reporting as a gateway (the gateway package does this every
	// second), and a component of another kind, which is not listed.
	c, err := discovery.Dial(t.Context(), discovery.DialOptions{Socket: srv.SocketPath(), Name: "gw"})
	require.NoError(t, err)
	defer c.Close()
	for _, m := range []*wire.ReportCounters{
		{Component: "gateway", Instance: "site-a", Counters: []wire.Counter{{Name: "forwarded", Value: 15}, {Name: "exported", Value: 10}, {Name: "imported", Value: 5}, {Name: "dropped", Value: 1}}},
		{Component: "recorder", Instance: "r1", Counters: []wire.Counter{{Name: "written", Value: 3}}},
	} {
		_, _, err = c.Request(t.Context(), m, nil)
		require.NoError(t, err)
	}

	code, out, errs = runCLI(t, "", "gateways", sock)
	require.Equal(t, exitOK, code, errs)
	lines := strings.Split(strings.TrimSpace(out), "\n")
	require.Len(t, lines, 2, out)
	require.Regexp(t, `^GATEWAY\s+CLIENT\s+PID\s+FORWARDED\s+EXPORTED\s+IMPORTED\s+DROPPED\s+REFUSED\s+LOOPED\s+GAPS\s+REORDERED\s+RECONNECTS\s+AGE$`, lines[0])
	require.Regexp(t, fmt.Sprintf(`^site-a\s+%d\s+%d\s+15\s+10\s+5\s+1\s+-\s+-\s+-\s+-\s+-\s+\S+$`, c.Welcome().ClientID, os.Getpid()), lines[1])
	field := regexp.MustCompile(`\S+`)
	head, cells := field.FindAllStringIndex(lines[0], -1), field.FindAllStringIndex(lines[1], -1)
	require.Len(t, cells, len(head))
	for i := range head {
		require.Equal(t, head[i][0], cells[i][0], "column %d aligned", i)
	}

	code, out, errs = runCLI(t, "", "gateways", "-json", sock)
	require.Equal(t, exitOK, code, errs)
	var v view
	require.NoError(t, json.Unmarshal([]byte(out), &v), out)
	require.Len(t, v.Components, 1)
	require.Equal(t, "site-a", v.Components[0].Instance)
	require.Equal(t, wire.Counter{Name: "forwarded", Value: 15}, v.Components[0].Counters[0])

	// Per-topic reports are listed below the gateways.
	_, _, err = c.Request(t.Context(), &wire.ReportCounters{Component: "gateway-topic", Instance: "site-a/export/cam/left",
		Counters: []wire.Counter{{Name: "forwarded", Value: 9}, {Name: "dropped", Value: 2}, {Name: "gaps", Value: 1}}}, nil)
	require.NoError(t, err)
	code, out, errs = runCLI(t, "", "gateways", sock)
	require.Equal(t, exitOK, code, errs)
	lines = strings.Split(strings.TrimSpace(out), "\n")
	require.Len(t, lines, 5, out)
	require.Regexp(t, `^site-a\s`, lines[1])
	require.Empty(t, lines[2])
	require.Regexp(t, `^GATEWAY\s+DIRECTION\s+TOPIC\s+FORWARDED\s+DROPPED\s+REFUSED\s+LOOPED\s+GAPS\s+REORDERED$`, lines[3])
	require.Regexp(t, `^site-a\s+export\s+cam/left\s+9\s+2\s+-\s+-\s+1\s+-$`, lines[4])

	code, _, errs = runCLI(t, "", "gateways", "-socket", filepath.Join(t.TempDir(), "none.sock"))
	require.Equal(t, exitNoRouter, code, errs)
}

func TestGatewayPolicyFlag(t *testing.T) {
	code, _, errs := runCLI(t, "", "gateway", "-policy", "lossy", "-export", "x")
	require.Equal(t, exitUsage, code, errs)
	require.Contains(t, errs, "want discard or block")
}
