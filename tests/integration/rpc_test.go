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
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/parallax-ipc/parallax/rpc"
)

func init() {
	childRoles["rpcserve"] = rpcServeMain
	childRoles["rpccall"] = rpcCallMain
}

// rpcServeMain serves -service: a request starting with 'e' is answered
// with its own bytes, one starting with 's' with a stream of 10 copies,
// any other is held unanswered (and counted: "held N"). Each stdin line is
// answered with the response memory as the server counts it: "mem <in
// use> <outstanding> <clients>".
func rpcServeMain(args []string) int {
	fs := flag.NewFlagSet("rpcserve", flag.ContinueOnError)
	socket := fs.String("socket", "", "router socket")
	service := fs.String("service", "svc", "service")
	if err := fs.Parse(args); err != nil {
		return 2
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	s, err := rpc.NewServer(ctx, *service, rpc.Options{Socket: *socket, MaxInFlight: 64})
	if err != nil {
		return childFail("rpcserve", "new server: %v", err)
	}
	defer s.Close()
	go func() {
		in := bufio.NewScanner(os.Stdin)
		for in.Scan() {
			st := s.Stats()
			fmt.Printf("mem %d %d %d\n", st.InUse, st.Outstanding, s.Clients())
		}
	}()
	fmt.Println("ready")
	held := 0
	for {
		r, err := s.Receive(ctx)
		if err != nil {
			return childFail("rpcserve", "receive: %v", err)
		}
		if b := r.Bytes(); len(b) > 0 && b[0] == 's' {
			for i := 1; i <= 10; i++ {
				ch, err := s.Loan(len(b))
				if err != nil {
					return childFail("rpcserve", "loan: %v", err)
				}
				copy(ch.Bytes(), b)
				if err := s.Send(ctx, r, &ch, i == 10); err != nil {
					fmt.Printf("send failed %v\n", strconv.Quote(err.Error())) // the client may be gone
					break
				}
			}
			_ = r.Release()
			continue
		}
		if b := r.Bytes(); len(b) > 0 && b[0] == 'e' {
			if err := s.Respond(ctx, r, b); err != nil {
				return childFail("rpcserve", "respond: %v", err)
			}
			_ = r.Release()
			continue
		}
		held++ // kept, never released: the server dies holding it
		fmt.Printf("held %d\n", held)
	}
}

// rpcCallMain makes -n echo calls on -service from -g goroutines (each
// checks its response is its own), prints "echoed", then starts -pending
// calls the server holds and waits for each with a one-minute deadline,
// printing "failed <kind>" per call (servergone, timeout or other) and,
// once the client's own request memory is all back (within 30 s),
// "mem <in use> <loans> <outstanding>".
func rpcCallMain(args []string) int {
	fs := flag.NewFlagSet("rpccall", flag.ContinueOnError)
	socket := fs.String("socket", "", "router socket")
	service := fs.String("service", "svc", "service")
	n := fs.Int("n", 100, "echo calls per goroutine")
	g := fs.Int("g", 4, "goroutines")
	pending := fs.Int("pending", 3, "calls left pending")
	streams := fs.Int("streams", 0, "after the echo calls, start this many 10-response streams, never read them, print streamed and wait for stdin EOF")
	if err := fs.Parse(args); err != nil {
		return 2
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	c, err := rpc.NewClient(ctx, *service, rpc.Options{Socket: *socket, MaxInFlight: *g + *pending})
	if err != nil {
		return childFail("rpccall", "new client: %v", err)
	}
	defer c.Close()
	if err := c.WaitForServers(ctx, 1); err != nil {
		return childFail("rpccall", "%v", err)
	}
	var wg sync.WaitGroup
	errs := make(chan error, *g)
	for gi := range *g {
		wg.Add(1)
		go func() {
			defer wg.Done()
			req := make([]byte, 64)
			req[0] = 'e'
			for i := range *n {
				binary.LittleEndian.PutUint64(req[8:], uint64(os.Getpid()))
				binary.LittleEndian.PutUint64(req[16:], uint64(gi<<32|i))
				r, err := c.Call(ctx, req)
				if err != nil {
					errs <- err
					return
				}
				ok := bytes.Equal(r.Bytes(), req) && r.End()
				_ = r.Release()
				if !ok {
					errs <- fmt.Errorf("goroutine %d call %d: response is not mine", gi, i)
					return
				}
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		return childFail("rpccall", "echo: %v", err)
	}
	fmt.Println("echoed")
	if *streams > 0 {
		for range *streams {
			ch, err := c.Loan(64)
			if err != nil {
				return childFail("rpccall", "loan: %v", err)
			}
			ch.Bytes()[0] = 's'
			if _, err := c.Start(ctx, &ch); err != nil {
				return childFail("rpccall", "start: %v", err)
			}
		}
		fmt.Println("streamed")
		_, _ = bufio.NewReader(os.Stdin).ReadString('\n')
		return 0
	}
	results := make(chan error, *pending)
	for range *pending {
		ch, err := c.Loan(64)
		if err != nil {
			return childFail("rpccall", "loan: %v", err)
		}
		ch.Bytes()[0] = 'h'
		st, err := c.Start(ctx, &ch)
		if err != nil {
			return childFail("rpccall", "start: %v", err)
		}
		go func() {
			cctx, ccancel := context.WithTimeout(ctx, time.Minute)
			defer ccancel()
			r, err := st.Next(cctx)
			if err == nil {
				_ = r.Release()
				err = errors.New("answered")
			}
			results <- err
		}()
	}
	fmt.Println("pending")
	for range *pending {
		err := <-results
		kind := "other"
		switch {
		case errors.Is(err, rpc.ErrServerGone):
			kind = "servergone"
		case errors.Is(err, context.DeadlineExceeded):
			kind = "timeout"
		}
		fmt.Printf("failed %s %v\n", kind, strconv.Quote(err.Error()))
	}
	if err := waitFor(ctx, func() bool { return c.Stats().InUse == 0 }); err != nil {
		return childFail("rpccall", "request chunks not back: %+v", c.Stats())
	}
	st := c.Stats()
	fmt.Printf("mem %d %d %d\n", st.InUse, st.Loans, st.Outstanding)
	_, _ = bufio.NewReader(os.Stdin).ReadString('\n') // until the test closes stdin
	return 0
}

// TestRPCServerKilled: two client processes call a server process (echo
// calls from 4 goroutines each, every response checked to be the
// caller's own), then leave calls pending that the server holds; the
// server is SIGKILLed. Every pending call fails with ErrServerGone, not at
// its one-minute deadline, and each client's own request memory is all
// back (the chunks delivered to the dead server reclaimed by the client).
func TestRPCServerKilled(t *testing.T) {
	t.Parallel()
	r := startRouterWith(t, ownedConfig)
	srv := spawn(t, "rpc server", "rpcserve", sockArg(r), "-service=plan")
	srv.expect("ready")
	const pending = 3
	var clients []*proc
	for i := range 2 {
		c := spawn(t, fmt.Sprintf("rpc client %d", i), "rpccall", sockArg(r), "-service=plan", "-n=200", "-g=4", "-pending="+strconv.Itoa(pending))
		clients = append(clients, c)
	}
	for _, c := range clients {
		c.expect("echoed")
		c.expect("pending")
	}
	srv.expect("held " + strconv.Itoa(2*pending)) // every pending call reached the server
	killed := time.Now()
	require.NoError(t, srv.cmd.Process.Signal(syscall.SIGKILL)) // our own child, by PID
	require.Error(t, srv.waitErr(), "the server was killed")
	for i, c := range clients {
		for range pending {
			f := c.expect("failed ")
			require.Equal(t, "servergone", f[0], "client %d: %v", i, f)
		}
		t.Logf("client %d: pending calls failed %v after the kill", i, time.Since(killed))
		require.Equal(t, []string{"0", "0", "0"}, c.expect("mem "), "client %d: in use, loans, outstanding", i)
	}
	for _, c := range clients {
		c.wait()
	}
}

// serverMem is an rpcserve child's "mem" line.
type serverMem struct{ InUse, Outstanding, Clients uint64 }

func (p *proc) serverMem(t *testing.T) serverMem {
	t.Helper()
	p.send("stats")
	f := p.expect("mem ")
	require.Len(t, f, 3, "mem line %q", f)
	return serverMem{atoi(t, f[0]), atoi(t, f[1]), atoi(t, f[2])}
}

// TestRPCClientKilled: a client process SIGKILLed while the server's
// responses to it sit unread in its queue costs the server nothing: once
// the router reports the death, the server's own accounting shows every
// response chunk back, exactly, and another client's calls still work.
func TestRPCClientKilled(t *testing.T) {
	t.Parallel()
	r := startRouterWith(t, ownedConfig)
	srv := spawn(t, "rpc server", "rpcserve", sockArg(r), "-service=kill")
	srv.expect("ready")
	const streams = 3 // 30 responses, more than the victim's queue takes at once
	victim := spawn(t, "victim client", "rpccall", sockArg(r), "-service=kill", "-n=20", "-g=2", "-streams="+strconv.Itoa(streams))
	victim.expect("echoed")
	victim.expect("streamed")
	deadline := time.Now().Add(30 * time.Second)
	tick := time.NewTicker(5 * time.Millisecond)
	defer tick.Stop()
	var m serverMem
	for {
		m = srv.serverMem(t)
		if m.Outstanding > 0 {
			break
		}
		require.True(t, time.Now().Before(deadline), "the server never delivered the streams: %+v", m)
		<-tick.C
	}
	require.Equal(t, uint64(1), m.Clients)
	require.NoError(t, victim.cmd.Process.Signal(syscall.SIGKILL)) // our own child, by PID
	require.Error(t, victim.waitErr(), "the victim was killed")
	for {
		m = srv.serverMem(t)
		if m.Clients == 0 && m.InUse == 0 && m.Outstanding == 0 {
			break
		}
		require.True(t, time.Now().Before(deadline), "the server never took the dead client's responses back: %+v", m)
		<-tick.C
	}
	other := spawn(t, "other client", "rpccall", sockArg(r), "-service=kill", "-n=50", "-g=2", "-pending=0")
	other.expect("echoed")
	require.Equal(t, []string{"0", "0", "0"}, other.expect("mem "))
	other.wait()
	m = srv.serverMem(t)
	require.Zero(t, m.InUse, "%+v", m)
}
