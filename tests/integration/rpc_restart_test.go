//go:build integration

package integration

import (
	"bufio"
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"flag"
	"fmt"
	"os"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/parallax-ipc/parallax/roudi"
	"github.com/parallax-ipc/parallax/rpc"
)

func init() { childRoles["rpcloop"] = rpcLoopMain }

// rpcLoopMain is a client of -service that calls on command: each stdin
// line "call N" makes N echo calls (each with a 10 s deadline, checked to
// return its own bytes) and prints "called N" or "callfail <error>";
// "mem" prints the client's request memory "mem <in use> <loans>
// <outstanding> <servers>"; "loop" starts calling (echoes and 10-response
// streams, alternately) in the background until "stop", which prints
// "looped <ok> <gone> <bad> <first bad error>" (gone: the server went or
// none was connected, which chaos makes expected). It prints "ready" once
// a server is connected (within 20 s) and exits at stdin EOF.
func rpcLoopMain(args []string) int {
	fs := flag.NewFlagSet("rpcloop", flag.ContinueOnError)
	socket := fs.String("socket", "", "router socket")
	service := fs.String("service", "svc", "service")
	if err := fs.Parse(args); err != nil {
		return 2
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	c, err := rpc.NewClient(ctx, *service, rpc.Options{Socket: *socket})
	if err != nil {
		return childFail("rpcloop", "new client: %v", err)
	}
	defer c.Close()
	wctx, wcancel := context.WithTimeout(ctx, 20*time.Second)
	defer wcancel()
	if err := c.WaitForServers(wctx, 1); err != nil {
		return childFail("rpcloop", "%v", err)
	}
	fmt.Println("ready")
	in := bufio.NewScanner(os.Stdin)
	req := make([]byte, 64)
	req[0] = 'e'
	seq := uint64(0)
	for in.Scan() {
		f := strings.Fields(in.Text())
		switch {
		case len(f) == 2 && f[0] == "call":
			n, _ := strconv.Atoi(f[1])
			var err error
			for i := 0; i < n && err == nil; i++ {
				seq++
				binary.LittleEndian.PutUint64(req[8:], seq)
				cctx, ccancel := context.WithTimeout(ctx, 10*time.Second)
				var r rpc.Response
				if r, err = c.Call(cctx, req); err == nil {
					if !bytes.Equal(r.Bytes(), req) || !r.End() {
						err = fmt.Errorf("call %d: response is not mine", seq)
					}
					_ = r.Release()
				}
				ccancel()
			}
			if err != nil {
				fmt.Printf("callfail %s\n", strconv.Quote(err.Error()))
			} else {
				fmt.Printf("called %d\n", n)
			}
		case len(f) == 1 && f[0] == "loop":
			stop, done := make(chan struct{}), make(chan string)
			go func() { done <- rpcLoop(ctx, c, stop) }()
			for in.Scan() && in.Text() != "stop" {
			}
			close(stop)
			fmt.Println(<-done)
		case len(f) == 1 && f[0] == "mem":
			st := c.Stats()
			fmt.Printf("mem %d %d %d %d\n", st.InUse, st.Loans, st.Outstanding, c.Servers())
		}
	}
	return 0
}

// TestRPCRouterRestart: a client process calling a server process keeps
// calling across a router SIGKILL and its successor (owned model): calls
// made while no router runs and while the endpoints resume are all
// answered; both
// endpoints resume as request/response endpoints of the service (kind and
// pair restored, not plain topics), calls after the restart are answered
// with the caller's own bytes, a client that connects to the successor is
// served too, and both ends' memory is all back at the end.
func TestRPCRouterRestart(t *testing.T) {
	dir, sock, domain, r1 := startRestartableRouter(t, "rsrpc", ownedConfig)
	srv := spawn(t, "rpc server", "rpcserve", "-socket", sock, "-service=rs")
	srv.expect("ready")
	cl := spawn(t, "rpc client", "rpcloop", "-socket", sock, "-service=rs")
	cl.expect("ready")
	cl.send("call 50")
	cl.expect("called 50")
	cl.send("loop") // calls go on while no router runs: the data path needs none

	killRouter(t, r1)
	router, ctx := startSuccessorWith(t, ownedConfig, domain, sock, dir, 10*time.Second)
	require.True(t, router.Adopted())
	waitCtx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	require.True(t, waitSnapshot(waitCtx, router, func(s roudi.Snapshot) bool { return len(s.Clients) == 2 }),
		"the client and the server did not resume")
	cl.send("stop")
	lf := cl.looped()
	require.Equal(t, [2]int{0, 0}, [2]int{lf.gone, lf.bad}, "calls across the restart failed (gone, bad; first bad error %q)", lf.firstBad)
	require.NotZero(t, lf.ok, "no call was answered across the restart")
	t.Logf("%d calls answered across the restart", lf.ok)

	cl.send("call 50")
	f := cl.expect("call")
	require.Equal(t, []string{"ed", "50"}, f, "calls after the restart: %v", f)
	cl.send("mem")
	require.Equal(t, "1", cl.expect("mem ")[3], "the client is connected to its one server")

	late := spawn(t, "late client", "rpcloop", "-socket", sock, "-service=rs")
	late.expect("ready")
	late.send("call 20")
	require.Equal(t, []string{"ed", "20"}, late.expect("call"), "a client of the successor is served")
	late.wait()

	deadline := time.Now().Add(30 * time.Second)
	tick := time.NewTicker(5 * time.Millisecond)
	defer tick.Stop()
	for {
		cl.send("mem")
		m := cl.expect("mem ")
		s := srv.serverMem(t)
		if m[0] == "0" && m[1] == "0" && m[2] == "0" && s.InUse == 0 && s.Outstanding == 0 && s.Clients == 1 {
			break
		}
		require.True(t, time.Now().Before(deadline), "memory not back: client %v, server %+v", m, s)
		<-tick.C
	}
	cl.wait()
}

// rpcLoop calls c until stop is closed: echoes checked to be its own, and
// streams of 10 read to the end. It returns the "looped" line.
func rpcLoop(ctx context.Context, c *rpc.Client, stop <-chan struct{}) string {
	var ok, gone, bad uint64
	first := ""
	req := make([]byte, 64)
	for i := uint64(1); ; i++ {
		select {
		case <-stop:
			return fmt.Sprintf("looped %d %d %d %s", ok, gone, bad, strconv.Quote(first))
		default:
		}
		req[0] = "es"[i%2]
		binary.LittleEndian.PutUint64(req[8:], i)
		err := rpcLoopCall(ctx, c, req)
		switch {
		case err == nil:
			ok++
		case errors.Is(err, rpc.ErrServerGone), errors.Is(err, rpc.ErrNoServer):
			gone++
			time.Sleep(time.Millisecond) // no server for a moment: do not spin
		default:
			bad++
			if first == "" {
				first = err.Error()
			}
		}
	}
}

// rpcLoopCall makes one call of req (an echo, or a stream of 10 copies
// when req[0] is 's') and checks every response.
func rpcLoopCall(ctx context.Context, c *rpc.Client, req []byte) error {
	cctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	ch, err := c.Loan(len(req))
	if err != nil {
		return err
	}
	copy(ch.Bytes(), req)
	st, err := c.Start(cctx, &ch)
	if err != nil {
		return err
	}
	want := 1
	if req[0] == 's' {
		want = 10
	}
	for n := 1; ; n++ {
		r, err := st.Next(cctx)
		if err != nil {
			return err
		}
		same, end := bytes.Equal(r.Bytes(), req), r.End()
		_ = r.Release()
		switch {
		case !same:
			st.Close()
			return fmt.Errorf("call %d response %d is not mine", binary.LittleEndian.Uint64(req[8:]), n)
		case end != (n == want):
			st.Close()
			return fmt.Errorf("call %d: response %d of %d, end %v", binary.LittleEndian.Uint64(req[8:]), n, want, end)
		case end:
			return nil
		}
	}
}

// loopedLine is rpcLoop's "looped" line, parsed.
type loopedLine struct {
	ok, gone, bad int
	firstBad      string // the first bad call's error, unquoted
}

// looped waits for p's "looped" line and parses it. The first bad error is
// quoted and may hold spaces: it is everything after the third count (runs
// of spaces in it come back as one).
func (p *proc) looped() loopedLine {
	p.t.Helper()
	f := p.expect("looped ")
	require.GreaterOrEqual(p.t, len(f), 3, "%s: looped line %q", p.name, f)
	var counts [3]int
	for i := range counts {
		n, err := strconv.Atoi(f[i])
		require.NoError(p.t, err, "%s: looped line %q", p.name, f)
		counts[i] = n
	}
	l := loopedLine{ok: counts[0], gone: counts[1], bad: counts[2], firstBad: strings.Join(f[3:], " ")}
	if s, err := strconv.Unquote(l.firstBad); err == nil {
		l.firstBad = s
	}
	return l
}
