package roudi_test

import (
	"context"
	"encoding/binary"
	"fmt"
	"io"
	"net"
	"os"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/parallax-ipc/parallax/internal/discovery"
	"github.com/parallax-ipc/parallax/internal/wire"
	"github.com/parallax-ipc/parallax/mempool"
	"github.com/parallax-ipc/parallax/publisher"
	"github.com/parallax-ipc/parallax/roudi"
	"github.com/parallax-ipc/parallax/segment"
	"github.com/parallax-ipc/parallax/subscriber"
)

// Helpers of the guard and ring-check tests: hostile raw clients, honest
// publisher and subscriber pairs, waiting with a deadline, and the final
// audit that the router survived.

// Ring header words (ringbuf layout version 1, pinned by ringbuf's
// TestLayout): head at 128 (position | pops<<32), tail at 256.
const (
	ringHeadOff = 128
	ringTailOff = 256
)

// hostile is a raw client that maps the management segment read-write, as
// every client does, and abuses it.
type hostile struct {
	c      *discovery.Client
	mgmt   *segment.Mapped
	pushes chan wire.Message
}

func dialHostile(t *testing.T, srv *roudi.Server) *hostile {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	c, err := discovery.Dial(ctx, discovery.DialOptions{Socket: srv.SocketPath(), Name: "hostile"})
	require.NoError(t, err)
	t.Cleanup(func() { c.Close() })
	// A second fd for the management segment: segment.Open owns what it
	// gets, and the client owns its own.
	f, err := os.OpenFile(fmt.Sprintf("/proc/self/fd/%d", c.Mgmt().Fd()), os.O_RDWR, 0)
	require.NoError(t, err)
	mgmt, err := segment.Open(f, segment.OpenOptions{})
	require.NoError(t, err)
	t.Cleanup(func() { mgmt.Close() })
	h := &hostile{c: c, mgmt: mgmt, pushes: make(chan wire.Message, 64)}
	remove := c.OnPush(func(m wire.Message, files []*os.File) {
		for _, f := range files {
			f.Close()
		}
		select {
		case h.pushes <- m:
		default:
		}
	})
	t.Cleanup(remove)
	return h
}

// create sends req (a CreatePublisher or CreateSubscriber), closes the
// payload fds of the reply (a hostile client only writes its ring) and
// returns the reply and the ConnectionAdded pushed for the new endpoint.
func (h *hostile) create(t *testing.T, ctx context.Context, req wire.Message) (wire.Message, *wire.ConnectionAdded) {
	t.Helper()
	reply, files, err := h.c.Request(ctx, req, nil)
	require.NoError(t, err)
	for _, f := range files {
		f.Close()
	}
	return reply, h.awaitConnection(t, ctx)
}

// awaitConnection returns the ConnectionAdded pushed to h.
func (h *hostile) awaitConnection(t *testing.T, ctx context.Context) *wire.ConnectionAdded {
	t.Helper()
	for {
		select {
		case m := <-h.pushes:
			if added, ok := m.(*wire.ConnectionAdded); ok {
				return added
			}
		case <-ctx.Done():
			t.Fatal("no ConnectionAdded for the hostile client")
		}
	}
}

// awaitDisconnected waits until the router disconnects h.
func (h *hostile) awaitDisconnected(t *testing.T, ctx context.Context, srv *roudi.Server) {
	t.Helper()
	select {
	case <-h.c.Done():
	case <-ctx.Done():
		t.Fatalf("hostile client not disconnected; guard stats %+v", srv.GuardStats())
	}
}

// word returns the 8 bytes at off in the ring a connection uses.
func (h *hostile) word(added *wire.ConnectionAdded, off uint64) []byte {
	return h.mgmt.Bytes()[added.RingOffset+off : added.RingOffset+off+8]
}

// addToTail moves the tail of a connection's ring delta entries on, past
// anything a producer wrote.
func (h *hostile) addToTail(added *wire.ConnectionAdded, delta uint64) {
	tail := h.word(added, ringTailOff)
	binary.LittleEndian.PutUint64(tail, binary.LittleEndian.Uint64(tail)+delta)
}

// pool attaches pool i's management area (no payload) through the hostile's
// own mapping.
func (h *hostile) pool(t *testing.T, i int) *mempool.Pool {
	t.Helper()
	pd := h.c.Welcome().Pools[i]
	p, err := mempool.Attach(h.mgmt.Bytes()[pd.MgmtOffset:pd.MgmtOffset+pd.MgmtSize], nil)
	require.NoError(t, err)
	return p
}

// ctlWord returns the bytes of slot's ctl word in pool i.
func (h *hostile) ctlWord(i int, slot uint32) []byte {
	pd := h.c.Welcome().Pools[i]
	area := h.mgmt.Bytes()[pd.MgmtOffset : pd.MgmtOffset+pd.MgmtSize]
	headers := binary.LittleEndian.Uint64(area[32:]) // header: headers offset
	off := headers + uint64(slot)*mempool.ChunkHeaderSize
	return area[off : off+8]
}

func ctl(gen uint32, owner uint16, rc uint32) uint64 {
	return uint64(gen)<<40 | uint64(owner)<<24 | uint64(rc)
}

func contains(s []uint32, v uint32) bool {
	for _, x := range s {
		if x == v {
			return true
		}
	}
	return false
}

// rawConn dials the router and completes the handshake by hand.
func rawConn(t *testing.T, srv *roudi.Server) *discovery.Conn {
	t.Helper()
	uc, err := net.DialUnix("unixpacket", nil, &net.UnixAddr{Name: srv.SocketPath(), Net: "unixpacket"})
	require.NoError(t, err)
	fc := discovery.NewConn(uc)
	t.Cleanup(func() { fc.Close() })
	require.NoError(t, fc.Send(1, &wire.Hello{Version: wire.Version, MinVersion: wire.MinVersion, PID: int32(os.Getpid()), Name: "raw"}, nil))
	env, files, err := fc.Recv()
	require.NoError(t, err)
	for _, f := range files {
		f.Close()
	}
	require.IsType(t, &wire.Welcome{}, env.Msg)
	return fc
}

// newSub opens an honest subscriber of topic on srv with opts (Socket set
// here); cleanup closes it. Tests close it themselves to check Close.
func newSub(t *testing.T, ctx context.Context, srv *roudi.Server, topic string, opts subscriber.Options) *subscriber.Subscriber {
	t.Helper()
	opts.Socket = srv.SocketPath()
	sub, err := subscriber.New(ctx, topic, opts)
	require.NoError(t, err)
	t.Cleanup(func() { sub.Close() })
	return sub
}

// newPub opens an honest publisher of topic on srv with opts (Socket set
// here); cleanup closes it. Tests close it themselves to check Close.
func newPub(t *testing.T, ctx context.Context, srv *roudi.Server, topic string, opts publisher.Options) *publisher.Publisher {
	t.Helper()
	opts.Socket = srv.SocketPath()
	pub, err := publisher.New(ctx, topic, opts)
	require.NoError(t, err)
	t.Cleanup(func() { pub.Close() })
	return pub
}

// newPair opens an honest subscriber and then an honest publisher of topic.
func newPair(t *testing.T, ctx context.Context, srv *roudi.Server, topic string) (*subscriber.Subscriber, *publisher.Publisher) {
	t.Helper()
	sub := newSub(t, ctx, srv, topic, subscriber.Options{})
	return sub, newPub(t, ctx, srv, topic, publisher.Options{})
}

// expectTake takes the next sample from sub and requires it to be want.
func expectTake(t *testing.T, sub *subscriber.Subscriber, want string) {
	t.Helper()
	x, err := sub.TakeTimeout(5 * time.Second)
	require.NoError(t, err, "take %q", want)
	require.Equal(t, want, string(x.Bytes()))
	require.NoError(t, x.Release())
}

// sendTake sends n samples on pub and takes them on sub, in order: 0 loss.
func sendTake(t *testing.T, pub *publisher.Publisher, sub *subscriber.Subscriber, tag string, n int) {
	t.Helper()
	for i := range n {
		require.NoError(t, pub.Send(fmt.Appendf(nil, "%s %d", tag, i)))
		expectTake(t, sub, fmt.Sprintf("%s %d", tag, i))
	}
}

func ctx10s(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	t.Cleanup(cancel)
	return ctx
}

// waitFor polls cond until it holds or the deadline passes.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(2 * time.Millisecond)
	}
}

// closeAllAndAudit closes each of cs, requiring no error, then
// requireAliveAndFree.
func closeAllAndAudit(t *testing.T, srv *roudi.Server, cs ...io.Closer) {
	t.Helper()
	for _, c := range cs {
		require.NoError(t, c.Close())
	}
	requireAliveAndFree(t, srv)
}

// requireAliveAndFree checks the router still answers and, once every
// client is gone, that no memory is left in use: in the owned model no
// publisher data segment (live or tombstone) remains; in the shared model
// every pool is 100% free (the idle sweep repairs what hostile peers left).
func requireAliveAndFree(t *testing.T, srv *roudi.Server) {
	t.Helper()
	ctx := ctx10s(t)
	c, err := discovery.Dial(ctx, discovery.DialOptions{Socket: srv.SocketPath(), Name: "probe"})
	require.NoError(t, err, "router must still accept clients")
	_, _, err = c.Request(ctx, &wire.Ping{}, nil)
	require.NoError(t, err, "router must still answer")
	require.NoError(t, c.Close())
	if srv.Pools() == nil { // owned model
		waitFor(t, "no publisher segment left", func() bool {
			in, err := srv.Introspect(ctx)
			require.NoError(t, err)
			return len(in.PublisherSegments) == 0
		})
		return
	}
	waitFor(t, "every pool 100% free", func() bool {
		for _, p := range srv.Pools().Pools() {
			if !p.Audit().AllFree() {
				return false
			}
		}
		return true
	})
}
