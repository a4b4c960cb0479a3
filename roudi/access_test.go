package roudi

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"runtime/debug"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/parallax-ipc/parallax"
	"github.com/parallax-ipc/parallax/internal/discovery"
	"github.com/parallax-ipc/parallax/internal/wire"
	pubpkg "github.com/parallax-ipc/parallax/publisher"
	subpkg "github.com/parallax-ipc/parallax/subscriber"
)

// startServerConfig runs a router with the given TOML on a socket in
// t.TempDir() and stops it in cleanup.
func startServerConfig(t *testing.T, toml string, opts Options) *Server {
	t.Helper()
	cfg, err := ParseConfig([]byte(toml))
	require.NoError(t, err)
	cfg.Domain = "acltest"
	if cfg.Socket == "" {
		cfg.Socket = filepath.Join(t.TempDir(), "r.sock")
	}
	cfg.RuntimeDir = t.TempDir() // the domain lock, apart from parallel tests
	if opts.Logger == nil {
		opts.Logger = discardLogger()
	}
	srv, err := New(cfg, opts)
	require.NoError(t, err)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- srv.Serve(ctx) }()
	var once sync.Once
	t.Cleanup(func() {
		once.Do(func() {
			cancel()
			require.NoError(t, <-done)
			srv.Close()
		})
	})
	select {
	case <-srv.Ready():
	case err := <-done:
		t.Fatalf("router stopped before it was ready: %v", err)
	case <-time.After(10 * time.Second):
		t.Fatal("router not ready")
	}
	return srv
}

// aclConfig restricts "secret" to uid 4242 both ways (root is not special)
// and "frames/*" publishing to uid 0, subscribing to gid 4242.
const aclConfig = testPools + `
[[access]]
topic = "secret"
publish_uids = [4242]
subscribe_uids = [4242]
[[access]]
topic = "frames/*"
publish_uids = [0]
subscribe_gids = [4242]
`

func dialRaw(t *testing.T, srv *Server) *discovery.Client {
	t.Helper()
	c, err := discovery.Dial(context.Background(), discovery.DialOptions{Socket: srv.SocketPath(), Name: "acl"})
	require.NoError(t, err)
	t.Cleanup(func() { c.Close() })
	return c
}

func closeAll(fs []*os.File) {
	for _, f := range fs {
		f.Close()
	}
}

// TestAccessRefusalSendsNoFD checks, at the wire level, that a refused
// request carries ErrPermissionDenied across the socket and no fd, and that
// an allowed one on the same connection gets the payload segments.
//
// Shared model: deleted in step 14 (the fds checked are the router-wide
// pools'). Owned-model counterparts: TestOwnedSegmentsGranted (grants per
// access rule) and tests/integration TestIsolationMatrix (refused clients
// hold no fd of the topic).
func TestAccessRefusalSendsNoFD(t *testing.T) {
	t.Parallel()
	srv := startServerConfig(t, aclConfig+sharedModel, Options{})
	c := dialRaw(t, srv)
	ctx := context.Background()
	typ := wire.TypeInfo{Name: "bytes"}

	for _, req := range []wire.Message{
		&wire.CreatePublisher{Topic: "secret", Type: typ},
		&wire.CreateSubscriber{Topic: "secret", Type: typ},
		&wire.CreateSubscriber{Topic: "frames/left", Type: typ},
	} {
		reply, files, err := c.Request(ctx, req, nil)
		closeAll(files)
		require.ErrorIs(t, err, parallax.ErrPermissionDenied, "%+v", req)
		require.ErrorContains(t, err, "uid 0")
		require.Nil(t, reply)
		require.Empty(t, files, "a refused %T must not carry fds", req)
	}

	// Allowed: publishing on frames/* (uid 0 listed) hands out the pool's
	// segment read-write.
	reply, files, err := c.Request(ctx, &wire.CreatePublisher{Topic: "frames/left", Type: typ}, nil)
	require.NoError(t, err)
	defer closeAll(files)
	pc, ok := reply.(*wire.PublisherCreated)
	require.True(t, ok, "%T", reply)
	require.Len(t, files, len(srv.Config().Pools))
	require.Len(t, pc.Segments, len(files))

	// The registry shows only the allowed publisher.
	snap, err := srv.Snapshot(ctx)
	require.NoError(t, err)
	var topics []string
	for _, tp := range snap.Topics {
		topics = append(topics, tp.Name)
	}
	require.Equal(t, []string{"frames/left"}, topics)
}

// TestSegmentsSealedAndReadOnly checks what a client can do with the fds it
// receives: no fd may be resized (the sizes are sealed, so a client cannot
// SIGBUS the router or its peers), and a subscriber's payload fd cannot be
// mapped writable.
//
// Shared model: deleted in step 14 (management segment and pools).
// Owned-model counterpart: TestOwnedSegmentsGranted (0600, sealed,
// read-only twin unwritable).
func TestSegmentsSealedAndReadOnly(t *testing.T) {
	t.Parallel()
	srv := startServerConfig(t, testPools+sharedModel, Options{})
	c := dialRaw(t, srv)
	ctx := context.Background()
	typ := wire.TypeInfo{Name: "bytes"}

	_, pubFiles, err := c.Request(ctx, &wire.CreatePublisher{Topic: "t", Type: typ}, nil)
	require.NoError(t, err)
	defer closeAll(pubFiles)
	_, subFiles, err := c.Request(ctx, &wire.CreateSubscriber{Topic: "t", Type: typ}, nil)
	require.NoError(t, err)
	defer closeAll(subFiles)
	require.NotEmpty(t, pubFiles)
	require.Len(t, subFiles, len(pubFiles))

	for name, f := range map[string]*os.File{"management": c.Mgmt(), "payload (publisher)": pubFiles[0]} {
		st, err := f.Stat()
		require.NoError(t, err)
		require.ErrorIs(t, f.Truncate(0), syscall.EPERM, "shrink the %s segment", name)
		require.ErrorIs(t, f.Truncate(st.Size()*2), syscall.EPERM, "grow the %s segment", name)
		st2, err := f.Stat()
		require.NoError(t, err)
		require.Equal(t, st.Size(), st2.Size())
	}

	ro := subFiles[0]
	st, err := ro.Stat()
	require.NoError(t, err)
	require.Error(t, ro.Truncate(0), "a read-only fd cannot be truncated")
	rc, err := ro.SyscallConn()
	require.NoError(t, err)
	var merr error
	require.NoError(t, rc.Control(func(fd uintptr) {
		var mem []byte
		mem, merr = syscall.Mmap(int(fd), 0, int(st.Size()), syscall.PROT_READ|syscall.PROT_WRITE, syscall.MAP_SHARED)
		if merr == nil {
			_ = syscall.Munmap(mem)
		}
	}))
	require.ErrorIs(t, merr, syscall.EACCES, "map a subscriber's payload segment writable")
}

// TestSubscriberPayloadIsReadOnly writes through a received sample: the
// subscriber's mapping is read-only, so the write faults (turned into a
// recoverable panic by debug.SetPanicOnFault) and the payload is unchanged.
func TestSubscriberPayloadIsReadOnly(t *testing.T) {
	t.Parallel()
	srv := startServerConfig(t, testPools, Options{})
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	sub, err := subpkg.New(ctx, "ro", subpkg.Options{Socket: srv.SocketPath()})
	require.NoError(t, err)
	defer sub.Close()
	pub, err := pubpkg.New(ctx, "ro", pubpkg.Options{Socket: srv.SocketPath()})
	require.NoError(t, err)
	defer pub.Close()
	require.NoError(t, pub.WaitForSubscribers(ctx, 1))
	require.NoError(t, pub.Send([]byte("hello")))
	s, err := sub.Take(ctx)
	require.NoError(t, err)
	defer func() { _ = s.Release() }()
	b := s.Bytes()
	require.Equal(t, "hello", string(b))

	fault := writeFaults(b)
	require.Error(t, fault, "writing into a subscriber's sample must fault")
	t.Logf("write attempt: %v", fault)
	require.Equal(t, "hello", string(s.Bytes()))
}

// writeFaults writes b[0] and returns the fault it caused, if any.
func writeFaults(b []byte) (err error) {
	defer debug.SetPanicOnFault(debug.SetPanicOnFault(true))
	defer func() {
		if r := recover(); r != nil {
			if e, ok := r.(error); ok {
				err = e
			} else {
				err = errors.New("panic")
			}
		}
	}()
	b[0] = 'j'
	return nil
}

func TestSocketDirAndSocketModes(t *testing.T) {
	t.Parallel()
	dir := filepath.Join(t.TempDir(), "run", "parallax")
	sock := filepath.Join(dir, "r.sock")
	srv := startServerConfig(t, "socket = \""+sock+"\"\nsocket_dir_mode = \"0751\"\nsocket_mode = \"0666\"\n"+testPools, Options{})
	require.Equal(t, sock, srv.SocketPath())
	st, err := os.Stat(dir)
	require.NoError(t, err)
	require.Equal(t, os.FileMode(0o751), st.Mode().Perm(), "created socket directory mode (umask must not apply)")
	st, err = os.Stat(sock)
	require.NoError(t, err)
	require.Equal(t, os.ModeSocket, st.Mode().Type())
	require.Equal(t, os.FileMode(0o666), st.Mode().Perm())

	// An existing directory keeps its mode; the default socket mode is 0600.
	existing := t.TempDir()
	require.NoError(t, os.Chmod(existing, 0o755))
	sock2 := filepath.Join(existing, "r.sock")
	startServerConfig(t, "socket = \""+sock2+"\"\n"+testPools, Options{})
	st, err = os.Stat(existing)
	require.NoError(t, err)
	require.Equal(t, os.FileMode(0o755), st.Mode().Perm())
	st, err = os.Stat(sock2)
	require.NoError(t, err)
	require.Equal(t, os.FileMode(0o600), st.Mode().Perm())
}

func TestConfigSocketModeValidation(t *testing.T) {
	t.Parallel()
	for _, bad := range []string{`socket_mode = "0400"`, `socket_mode = "01666"`} {
		cfg, err := ParseConfig([]byte(bad))
		require.NoError(t, err)
		err = cfg.Validate()
		var ce *ConfigError
		require.ErrorAs(t, err, &ce, bad)
		require.ErrorContains(t, err, "socket_mode")
	}
	require.Equal(t, FileMode(0o600), DefaultConfig().SocketMode)
}
