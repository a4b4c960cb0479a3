//go:build integration

package integration

import (
	"bufio"
	"context"
	"encoding/binary"
	"encoding/json"
	"log/slog"
	"net"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/stretchr/testify/require"

	"github.com/parallax-ipc/parallax"
	"github.com/parallax-ipc/parallax/gateway"
	"github.com/parallax-ipc/parallax/internal/discovery"
	"github.com/parallax-ipc/parallax/internal/testutil"
	"github.com/parallax-ipc/parallax/internal/wire"
	"github.com/parallax-ipc/parallax/publisher"
	"github.com/parallax-ipc/parallax/subscriber"
)

// startNATS runs an embedded NATS server on 127.0.0.1 (port -1 = random)
// until the test ends.
func startNATS(t *testing.T, port int) *server.Server {
	t.Helper()
	ns, err := server.NewServer(&server.Options{Host: "127.0.0.1", Port: port, NoLog: true, NoSigs: true})
	require.NoError(t, err)
	go ns.Start()
	t.Cleanup(func() { ns.Shutdown(); ns.WaitForShutdown() })
	require.True(t, ns.ReadyForConnections(10*time.Second), "NATS server not ready")
	return ns
}

// runGateway runs a gateway in this process until the returned stop
// function (also run by t.Cleanup) is called, and waits until it is ready.
func runGateway(t *testing.T, opts gateway.Options) (*gateway.Gateway, func()) {
	t.Helper()
	if testing.Verbose() {
		opts.Logger = slog.New(slog.NewTextHandler(tlogWriter{t}, nil))
	} else {
		// Kept, and shown only when the test fails.
		var buf testutil.Buffer
		opts.Logger = slog.New(slog.NewTextHandler(&buf, nil))
		t.Cleanup(func() {
			if t.Failed() {
				t.Logf("gateway log:\n%s", buf.String())
			}
		})
	}
	opts.MinBackoff, opts.MaxBackoff = 10*time.Millisecond, 200*time.Millisecond
	g, err := gateway.New(opts)
	require.NoError(t, err)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- g.Run(ctx) }()
	stopped := false
	stop := func() {
		if !stopped {
			stopped = true
			cancel()
			require.NoError(t, <-done)
		}
	}
	t.Cleanup(stop)
	select {
	case <-g.Ready():
	case err := <-done:
		t.Fatalf("gateway stopped before ready: %v", err)
	case <-time.After(30 * time.Second):
		t.Fatal("gateway not ready after 30s")
	}
	return g, stop
}

type tlogWriter struct{ t *testing.T }

func (w tlogWriter) Write(b []byte) (int, error) { w.t.Log(string(b)); return len(b), nil }

// TestGatewayAcrossDomains: a publisher process in domain A reaches a
// subscriber process in domain B through gateway A (export) -> NATS ->
// gateway B (import): every byte verified, checksums equal, order kept;
// with both routers in the shared and in the owned memory model.
func TestGatewayAcrossDomains(t *testing.T) {
	t.Parallel()
	for _, m := range []struct{ name, config string }{{"shared", sharedConfig}, {"owned", ownedConfig}} {
		t.Run(m.name, func(t *testing.T) {
			t.Parallel()
			testGatewayAcrossDomains(t, m.config)
		})
	}
}

func testGatewayAcrossDomains(t *testing.T, config string) {
	ns := startNATS(t, -1)
	ra, rb := startRouterWith(t, config), startRouterWith(t, config)
	const n = 800 // fits the exporter's queue and the 256 B pool: lossless whatever the speeds
	topic := []gateway.Topic{{Name: "bridged", Type: &gateway.Type{Name: "pattern.v1"}}}
	ga, _ := runGateway(t, gateway.Options{NATSURL: ns.ClientURL(), Socket: ra.Socket, Export: topic, QueueCapacity: 1024})
	gb, _ := runGateway(t, gateway.Options{NATSURL: ns.ClientURL(), Socket: rb.Socket, Import: topic})
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("gateway A %v; gateway B %v", ga.Stats(), gb.Stats())
		}
	})

	sub := spawn(t, "subscriber B", "sub", sockArg(rb), "-topic=bridged", "-type=pattern.v1", "-n="+strconv.Itoa(n),
		"-qcap=64", "-policy=block", "-wait-pubs=1")
	sub.expect("connected") // gateway B's publisher (created at start: the type is configured)
	pub := spawn(t, "publisher A", "pub", sockArg(ra), "-topic=bridged", "-type=pattern.v1", "-n="+strconv.Itoa(n), "-size=200", "-subs=1")
	res := parsePubResult(t, pub.expect("result "))
	pub.wait()
	rep := parseSubReport(t, sub.wait())
	require.Equal(t, uint64(n), rep.Total, "A %v; B %v", ga.Stats(), gb.Stats())
	require.Len(t, rep.Pubs, 1)
	for _, got := range rep.Pubs { // one publisher: gateway B's
		require.Equal(t, res.CRC, got.CRC, "checksums across the bridge")
		require.Equal(t, uint64(1), got.First)
		require.Equal(t, uint64(n), got.Last)
	}
	sa, sb := ga.Stats(), gb.Stats()
	require.Equal(t, uint64(n), sa.Exported, "%v", sa)
	require.Equal(t, uint64(n), sb.Imported, "%v", sb)
	require.Zero(t, sb.Gaps+sb.Reordered+sb.Refused+sb.Dropped, "%v", sb)

	// Each router shows its gateway's counters, as the gateways report
	// them (every second): B's through the real CLI, A's through the
	// introspection protocol.
	waitCounters(t, "router B listing gateway B's imports (parallax gateways)", func() map[string]uint64 {
		return cliGatewayCounters(t, rb, gb.ID())
	}, map[string]uint64{"forwarded": n, "imported": n})
	waitCounters(t, "router A listing gateway A's exports (ListComponents)", func() map[string]uint64 {
		return introspectGatewayCounters(t, ra, ga.ID())
	}, map[string]uint64{"forwarded": n, "exported": n})
}

// waitCounters polls get until every counter in atLeast has at least that
// value, failing after a deadline.
func waitCounters(t *testing.T, what string, get func() map[string]uint64, atLeast map[string]uint64) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	tick := time.NewTicker(20 * time.Millisecond)
	defer tick.Stop()
	for {
		got := get()
		ok := got != nil
		for name, v := range atLeast {
			ok = ok && got[name] >= v
		}
		if ok {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s: have %v, want at least %v", what, got, atLeast)
		}
		<-tick.C
	}
}

// counterMap returns the counters of gateway id in list (nil if absent).
func counterMap(list []wire.ComponentStat, id string) map[string]uint64 {
	for _, c := range list {
		if c.Component == gateway.ReportComponent && c.Instance == id {
			m := map[string]uint64{}
			for _, ctr := range c.Counters {
				m[ctr.Name] = ctr.Value
			}
			return m
		}
	}
	return nil
}

// cliGatewayCounters runs `parallax gateways -json` against r.
func cliGatewayCounters(t *testing.T, r *router, id string) map[string]uint64 {
	t.Helper()
	bin, _ := buildCLI(t)
	out, err := exec.Command(bin, "gateways", "-json", "-socket", r.Socket).Output()
	require.NoError(t, err, "parallax gateways")
	var v struct{ Components []wire.ComponentStat }
	require.NoError(t, json.Unmarshal(out, &v), "%s", out)
	return counterMap(v.Components, id)
}

// introspectGatewayCounters asks r for its component reports with the
// introspection protocol.
func introspectGatewayCounters(t *testing.T, r *router, id string) map[string]uint64 {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	c, err := discovery.Dial(ctx, discovery.DialOptions{Socket: r.Socket, Name: "gateway-test"})
	require.NoError(t, err)
	defer c.Close()
	var all []wire.ComponentStat
	for off := uint32(0); ; {
		m, _, err := c.Request(ctx, &wire.ListComponents{Offset: off}, nil)
		require.NoError(t, err)
		l := m.(*wire.ComponentList)
		all = append(all, l.Components...)
		if off = l.Next; off == 0 {
			return counterMap(all, id)
		}
	}
}

// TestGatewayRestartsAndTypeMismatch: the flow resumes after gateway B,
// the NATS server and gateway A restart (order kept throughout: origin
// sequence numbers in the payload only increase), and a type mismatch
// across the bridge is refused.
func TestGatewayRestartsAndTypeMismatch(t *testing.T) {
	t.Parallel()
	ns := startNATS(t, -1)
	port := ns.Addr().(*net.TCPAddr).Port
	url := ns.ClientURL()
	ra, rb := startRouter(t), startRouter(t)
	topic := []gateway.Topic{{Name: "r", Type: &gateway.Type{Name: "pattern.v1"}}}
	optsA := gateway.Options{NATSURL: url, Socket: ra.Socket, Export: topic}
	optsB := gateway.Options{NATSURL: url, Socket: rb.Socket, Import: topic}
	ga, stopA := runGateway(t, optsA)
	_, stopB := runGateway(t, optsB)

	ctx := context.Background()
	pub, err := publisher.New(ctx, "r", publisher.Options{Socket: ra.Socket, TypeName: "pattern.v1"})
	require.NoError(t, err)
	defer pub.Close()
	sub, err := subscriber.New(ctx, "r", subscriber.Options{Socket: rb.Socket, TypeName: "pattern.v1", QueueCapacity: 64})
	require.NoError(t, err)
	defer sub.Close()
	require.NoError(t, pub.WaitForSubscribers(ctx, 1))
	seq, lastGot := uint64(0), uint64(0)
	// flow publishes until m samples arrived in B, checking every one.
	flow := func(what string, m int) {
		t.Helper()
		deadline := time.Now().Add(30 * time.Second)
		for got := 0; got < m; {
			require.True(t, time.Now().Before(deadline), "%s: flow did not resume (A %v)", what, ga.Stats())
			seq++
			c, err := pub.Loan(256)
			require.NoError(t, err)
			fill(c.Bytes(), seq)
			require.NoError(t, pub.Publish(c))
			for {
				s, err := sub.TakeTimeout(5 * time.Millisecond)
				if err != nil {
					require.ErrorIs(t, err, parallax.ErrTimeout)
					break
				}
				origin := binary.LittleEndian.Uint64(s.Bytes())
				require.NoError(t, verify(s.Bytes(), origin))
				require.Greater(t, origin, lastGot, "%s: order across the bridge", what)
				lastGot = origin
				got++
				require.NoError(t, s.Release())
			}
		}
	}
	flow("start", 20)

	stopB()
	_, stopB = runGateway(t, optsB)
	flow("gateway B restarted", 20)

	ns.Shutdown()
	ns.WaitForShutdown()
	startNATS(t, port)
	flow("NATS restarted", 20)

	stopA()
	ga, _ = runGateway(t, optsA)
	require.NoError(t, pub.WaitForSubscribers(ctx, 1))
	flow("gateway A restarted", 20)
	stopB()

	// Type mismatch: gateway C imports "r" into domain C without a
	// configured type, so it takes pattern.v1 from the first message; but
	// a subscriber of another type holds topic "r" in C: refused.
	rc := startRouter(t)
	wrong, err := subscriber.New(ctx, "r", subscriber.Options{Socket: rc.Socket, TypeName: "something.else", TypeSize: 8, TypeAlign: 8})
	require.NoError(t, err)
	defer wrong.Close()
	gc, _ := runGateway(t, gateway.Options{NATSURL: url, Socket: rc.Socket, Import: []gateway.Topic{{Name: "r"}}})
	deadline := time.Now().Add(30 * time.Second)
	for gc.Stats().Refused == 0 {
		require.True(t, time.Now().Before(deadline), "no refusal (C %v)", gc.Stats())
		seq++
		c, err := pub.Loan(64)
		require.NoError(t, err)
		fill(c.Bytes(), seq)
		require.NoError(t, pub.Publish(c))
		if _, err := wrong.TakeTimeout(2 * time.Millisecond); err == nil { // paces the loop
			t.Fatal("a sample of the wrong type was delivered")
		}
	}
	_, err = wrong.TryTake()
	require.ErrorIs(t, err, subscriber.ErrNoData, "nothing of the wrong type delivered")
	require.Zero(t, gc.Stats().Imported)
}

// cliGateway is a `parallax gateway` process.
type cliGateway struct {
	stopped bool   // stop ran (the test goroutine's)
	last    string // the last stdout line
	cmd     *exec.Cmd
	stdout  *bufio.Scanner
	stderr  testutil.Buffer
	done    chan error
}

// startCLIGateway runs `parallax gateway args...` and waits for its ready
// line; t.Cleanup interrupts it (and kills it, by PID, if it hangs).
func startCLIGateway(t *testing.T, args ...string) *cliGateway {
	t.Helper()
	bin, _ := buildCLI(t)
	g := &cliGateway{cmd: exec.Command(bin, append([]string{"gateway"}, args...)...), done: make(chan error, 1)}
	g.cmd.Stderr = &g.stderr
	out, err := g.cmd.StdoutPipe()
	require.NoError(t, err)
	g.stdout = bufio.NewScanner(out)
	require.NoError(t, g.cmd.Start())
	go func() { g.done <- g.cmd.Wait() }()
	t.Cleanup(func() { g.stop(t) })
	ready := make(chan bool, 1)
	go func() { ready <- g.stdout.Scan() && strings.HasSuffix(g.stdout.Text(), " ready") }()
	select {
	case ok := <-ready:
		require.True(t, ok, "gateway %v: no ready line; stderr:\n%s", args, g.stderr.String())
	case <-time.After(30 * time.Second):
		t.Fatalf("gateway %v not ready after 30s; stderr:\n%s", args, g.stderr.String())
	}
	return g
}

// stop interrupts the gateway and returns its last stdout line (the
// stopped line with its counters). Idempotent.
func (g *cliGateway) stop(t *testing.T) string {
	t.Helper()
	if g.stopped {
		return g.last
	}
	g.stopped = true
	_ = g.cmd.Process.Signal(os.Interrupt)
	lines := make(chan struct{})
	go func() {
		for g.stdout.Scan() {
			g.last = g.stdout.Text()
		}
		close(lines)
	}()
	select {
	case err := <-g.done:
		<-lines
		require.NoError(t, err, "gateway exit; stderr:\n%s", g.stderr.String())
	case <-time.After(30 * time.Second):
		_ = g.cmd.Process.Kill()
		t.Logf("gateway after SIGKILL: %v", <-g.done)
		t.Fatalf("gateway did not stop on SIGINT; stderr:\n%s", g.stderr.String())
	}
	return g.last
}

// TestGatewayCLILossless: two `parallax gateway -policy block` processes
// carry a flat-out publisher process's samples to a subscriber process
// without loss and in order (the publisher is slowed down instead), and
// stop cleanly on SIGINT without warnings.
func TestGatewayCLILossless(t *testing.T) {
	t.Parallel()
	ns := startNATS(t, -1)
	ra, rb := startRouter(t), startRouter(t)
	const n = 20000 // 20x the 256 B pool: only backpressure keeps this lossless
	ga := startCLIGateway(t, "-socket", ra.Socket, "-nats", ns.ClientURL(), "-export", "flat:pattern.v1", "-policy", "block", "-queue", "64")
	gb := startCLIGateway(t, "-socket", rb.Socket, "-nats", ns.ClientURL(), "-import", "flat:pattern.v1", "-policy", "block")
	sub := spawn(t, "subscriber B", "sub", sockArg(rb), "-topic=flat", "-type=pattern.v1", "-n="+strconv.Itoa(n),
		"-qcap=64", "-policy=block", "-wait-pubs=1")
	sub.expect("connected")
	pub := spawn(t, "publisher A", "pub", sockArg(ra), "-topic=flat", "-type=pattern.v1", "-n="+strconv.Itoa(n), "-size=200", "-subs=1")
	res := parsePubResult(t, pub.expect("result "))
	pub.wait()
	rep := parseSubReport(t, sub.wait())
	require.Equal(t, uint64(n), rep.Total)
	for _, got := range rep.Pubs {
		require.Equal(t, res.CRC, got.CRC, "checksums across the bridge")
		require.Equal(t, uint64(1), got.First)
		require.Equal(t, uint64(n), got.Last)
	}
	lastA, lastB := ga.stop(t), gb.stop(t)
	require.Contains(t, lastA, "exported="+strconv.Itoa(n))
	require.Contains(t, lastA, "dropped=0 ")
	require.Contains(t, lastB, "imported="+strconv.Itoa(n))
	require.Contains(t, lastB, "dropped=0 ")
	require.Contains(t, lastB, "gaps=0 ")
	for _, g := range []*cliGateway{ga, gb} {
		require.NotContains(t, g.stderr.String(), "level=WARN")
		require.NotContains(t, g.stderr.String(), "level=ERROR")
	}
}
