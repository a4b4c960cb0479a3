package roudi

import (
	"context"
	"io"
	"net"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/parallax-ipc/parallax/internal/discovery"
	"github.com/parallax-ipc/parallax/internal/testutil"
	"github.com/parallax-ipc/parallax/internal/wire"
)

// BenchmarkNonReaders measures the router's responsiveness while 16
// clients flood it with requests and never read the replies (each one cut
// is replaced by a new one). One op is the death of a client process: it
// is started, registered, SIGKILLed, and its reclaim awaited. Meanwhile an
// honest client pings the router back to back. Reported: ping-p50-ms and
// ping-p99-ms (honest round trips) and reclaim-p99-ms (exit to reclaimed:
// the monitor's exit time when it has one, else the kill).
func BenchmarkNonReaders(b *testing.B) {
	reclaims := make(chan Reclaim, 1024)
	cfg, err := ParseConfig([]byte(testPools)) // default request rate limits
	if err != nil {
		b.Fatal(err)
	}
	cfg.Domain = "outqbench"
	cfg.Socket = filepath.Join(b.TempDir(), "r.sock")
	var flooder atomic.Int32 // the non-readers' pid: their cuts are reclaimed too
	srv, err := New(cfg, Options{Logger: discardLogger(), OnReclaim: func(r Reclaim) {
		if r.PID == flooder.Load() {
			return
		}
		select {
		case reclaims <- r:
		default:
		}
	}})
	if err != nil {
		b.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	served := make(chan error, 1)
	go func() { served <- srv.Serve(ctx) }()
	defer func() {
		cancel()
		if err := <-served; err != nil {
			b.Error(err)
		}
		srv.Close()
	}()
	<-srv.Ready()

	// The non-readers run in a child process, as they would: in this one
	// they would compete with the router for the Go scheduler.
	const nonReaders = 16
	fl := testutil.ChildCommand(b, "non-readers", nil, srv.SocketPath(), strconv.Itoa(nonReaders))
	stdin, err := fl.StdinPipe()
	if err != nil {
		b.Fatal(err)
	}
	if err := fl.Start(); err != nil {
		b.Fatal(err)
	}
	flooder.Store(int32(fl.Process.Pid))
	defer func() {
		stdin.Close()
		_ = fl.Wait()
	}()

	honest, err := discovery.Dial(ctx, discovery.DialOptions{Socket: srv.SocketPath(), Name: "honest"})
	if err != nil {
		b.Fatal(err)
	}
	defer honest.Close()
	var pings []time.Duration
	stopPing := make(chan struct{})
	pinged := make(chan struct{})
	go func() {
		defer close(pinged)
		for {
			select {
			case <-stopPing:
				return
			default:
			}
			start := time.Now()
			if _, _, err := honest.Request(ctx, &wire.Ping{}, nil); err != nil {
				return
			}
			pings = append(pings, time.Since(start))
		}
	}()

	var exits []time.Duration
	b.ResetTimer()
	for b.Loop() {
		child := startIdleClient(b, srv)
		pid := int32(child.Process.Pid)
		waitRegistered(b, ctx, srv, pid)
		if err := child.Process.Signal(syscall.SIGKILL); err != nil {
			b.Fatal(err)
		}
		killed := time.Now()
		timeout := time.After(30 * time.Second)
		for reclaimed := false; !reclaimed; {
			select {
			case r := <-reclaims:
				if reclaimed = r.PID == pid; reclaimed {
					from := killed
					if !r.Exited.IsZero() {
						from = r.Exited
					}
					exits = append(exits, r.Done.Sub(from))
				}
			case <-timeout:
				b.Fatalf("client %d not reclaimed", pid)
			}
		}
	}
	b.StopTimer()
	close(stopPing)
	<-pinged
	b.ReportMetric(ms(percentile(pings, 50)), "ping-p50-ms")
	b.ReportMetric(ms(percentile(pings, 99)), "ping-p99-ms")
	b.ReportMetric(ms(percentile(exits, 99)), "reclaim-p99-ms")
	g := srv.GuardStats()
	b.ReportMetric(float64(g.StalledDisconnects), "stalled-cuts")
	b.ReportMetric(float64(g.FloodDisconnects), "flood-cuts")
	b.ReportMetric(float64(len(pings)), "pings")
}

func init() { serverChildRoles["non-readers"] = nonReadersChild }

// nonReadersChild keeps args[1] clients of the router at args[0] sending
// Pings without reading the replies (a client cut is replaced by a new
// one) until stdin closes.
func nonReadersChild(args []string) int {
	n, err := strconv.Atoi(args[1])
	if err != nil {
		return 2
	}
	ctx, cancel := context.WithCancel(context.Background())
	go func() { _, _ = io.Copy(io.Discard, os.Stdin); cancel() }()
	var wg sync.WaitGroup
	for range n {
		wg.Go(func() {
			for ctx.Err() == nil {
				fc := handshake(args[0])
				if fc == nil {
					return
				}
				stop := context.AfterFunc(ctx, func() { fc.Close() })
				for id := uint32(2); fc.Send(id, &wire.Ping{}, nil) == nil; id++ {
				}
				stop()
				fc.Close()
			}
		})
	}
	wg.Wait()
	return 0
}

// handshake dials sock and completes the handshake by hand (nil if the
// router is gone).
func handshake(sock string) *discovery.Conn {
	uc, err := net.DialUnix("unixpacket", nil, &net.UnixAddr{Name: sock, Net: "unixpacket"})
	if err != nil {
		return nil
	}
	fc := discovery.NewConn(uc)
	hello := &wire.Hello{Version: wire.Version, MinVersion: wire.MinVersion, PID: int32(os.Getpid()), Name: "non-reader"}
	if fc.Send(1, hello, nil) != nil {
		fc.Close()
		return nil
	}
	_, files, err := fc.Recv()
	closeFiles(files)
	if err != nil {
		fc.Close()
		return nil
	}
	return fc
}

// waitRegistered polls the registry until it lists pid.
func waitRegistered(b *testing.B, ctx context.Context, srv *Server, pid int32) {
	deadline := time.Now().Add(30 * time.Second)
	tick := time.NewTicker(time.Millisecond)
	defer tick.Stop()
	for {
		snap, err := srv.Snapshot(ctx)
		if err == nil && slices.ContainsFunc(snap.Clients, func(c ClientInfo) bool { return c.PID == pid }) {
			return
		}
		if time.Now().After(deadline) {
			b.Fatalf("client %d not registered", pid)
		}
		<-tick.C
	}
}

func percentile(ds []time.Duration, p int) time.Duration {
	if len(ds) == 0 {
		return 0
	}
	s := slices.Clone(ds)
	slices.Sort(s)
	return s[min(len(s)-1, len(s)*p/100)]
}

func ms(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }
