package discovery

import (
	"context"
	"net"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/parallax-ipc/parallax/internal/testutil"
	"github.com/parallax-ipc/parallax/internal/wire"
)

func TestMain(m *testing.M) {
	// Opening a file initialises the runtime's netpoller (an epoll fd and an
	// eventfd); do it before testutil.Main counts fds, or they read as a leak.
	_, _ = os.ReadFile("/proc/self/stat")
	testutil.Main(m)
}

// testCtx returns a context bounded by a generous deadline so a broken test
// fails instead of hanging.
func testCtx(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	t.Cleanup(cancel)
	return ctx
}

// pair returns both ends of a unixpacket connection through a listener in
// t.TempDir().
func pair(t *testing.T) (client, server *net.UnixConn) {
	t.Helper()
	path := filepath.Join(t.TempDir(), "p.sock")
	l, err := Listen(path)
	require.NoError(t, err)
	defer l.Close()
	c, err := net.Dial("unixpacket", path)
	require.NoError(t, err)
	s, err := l.AcceptUnix()
	require.NoError(t, err)
	t.Cleanup(func() { c.Close(); s.Close() })
	return c.(*net.UnixConn), s
}

// tempFiles returns n open temporary files, closed at cleanup.
func tempFiles(t *testing.T, n int) []*os.File {
	t.Helper()
	var fs []*os.File
	for range n {
		f, err := os.CreateTemp(t.TempDir(), "seg")
		require.NoError(t, err)
		t.Cleanup(func() { f.Close() })
		fs = append(fs, f)
	}
	return fs
}

func requireSameFiles(t *testing.T, want, got []*os.File) {
	t.Helper()
	require.Len(t, got, len(want))
	for i := range want {
		a, err := want[i].Stat()
		require.NoError(t, err)
		b, err := got[i].Stat()
		require.NoError(t, err)
		require.True(t, os.SameFile(a, b), "fd %d: received file is not the sent one", i)
	}
}

var (
	resumeToken = []byte("0123456789abcdef0123456789abcdef")
	dataSeg     = wire.DataSegDesc{PubID: 1, Kind: wire.KindMemfd, ChunkSize: 64, Count: 8, PageSize: 4096, Size: 4096}
	grow        = &wire.GrowData{PubID: 1, ChunkSize: 64, Count: 8, Reason: wire.GrowExhausted}
	connSeg     = wire.ConnSegDesc{ConnID: 1, PubID: 1, SubID: 7, Capacity: 8, ReturnCapacity: 8, Bound: 8, MaxHeld: 8, Size: 4096}
)

// fakeRouter is a tiny router for client tests: it accepts connections,
// performs the handshake and runs handle for each request on its own
// goroutine, so replies may come back out of order.
type fakeRouter struct {
	path   string
	l      *net.UnixListener
	wg     sync.WaitGroup
	mu     sync.Mutex
	conns  []*ServerConn
	handle func(s *ServerConn, env wire.Envelope, files []*os.File)
}

func startRouter(t *testing.T, handle func(s *ServerConn, env wire.Envelope, files []*os.File)) *fakeRouter {
	t.Helper()
	return startRouterB(t, handle)
}

func startRouterB(t testing.TB, handle func(s *ServerConn, env wire.Envelope, files []*os.File)) *fakeRouter {
	t.Helper()
	r := &fakeRouter{path: filepath.Join(t.TempDir(), "r.sock"), handle: handle}
	var err error
	r.l, err = Listen(r.path)
	require.NoError(t, err)
	r.wg.Add(1)
	go r.accept()
	t.Cleanup(r.stop)
	return r
}

func (r *fakeRouter) accept() {
	defer r.wg.Done()
	for {
		uc, err := r.l.AcceptUnix()
		if err != nil {
			return
		}
		s, err := NewServerConn(uc)
		if err != nil {
			continue
		}
		r.mu.Lock()
		r.conns = append(r.conns, s)
		r.mu.Unlock()
		r.wg.Add(1)
		go r.serve(s)
	}
}

func (r *fakeRouter) serve(s *ServerConn) {
	defer r.wg.Done()
	id, _, err := s.ReadHello(context.Background())
	if err != nil {
		return
	}
	if err := s.Reply(id, &wire.Welcome{Version: s.Version, ClientID: 1, RouterPID: int32(os.Getpid()), Domain: "test", ResumeToken: resumeToken}, nil); err != nil {
		return
	}
	for {
		env, files, err := s.ReadRequest()
		if err != nil {
			return
		}
		r.wg.Add(1)
		go func() {
			defer r.wg.Done()
			defer closeFiles(files)
			r.handle(s, env, files)
		}()
	}
}

// dropClients closes every accepted connection (the router "goes away").
func (r *fakeRouter) dropClients() {
	r.mu.Lock()
	defer r.mu.Unlock()
	for _, s := range r.conns {
		s.Close()
	}
}

func (r *fakeRouter) stop() {
	r.l.Close()
	r.dropClients()
	r.wg.Wait()
}
