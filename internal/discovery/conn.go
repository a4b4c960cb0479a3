package discovery

import (
	"errors"
	"fmt"
	"net"
	"os"
	"sync"
	"sync/atomic"

	"github.com/parallax-ipc/parallax"
	"github.com/parallax-ipc/parallax/internal/sys"
	"github.com/parallax-ipc/parallax/internal/wire"
)

// ErrControlTruncated reports a message that carried more fds than the
// receiver accepts; the fds that arrived were closed. Errors wrapping it
// also wrap parallax.ErrProtocol.
var ErrControlTruncated = sys.ErrControlTruncated

// Cred is a socket peer's identity as recorded by the kernel at connect
// time (SO_PEERCRED). PID is not reuse-safe once the peer has exited; use
// [Conn.PeerPidfd] to follow the process.
type Cred struct {
	PID int32
	UID uint32
	GID uint32
}

// PeerCred returns the credentials of the process at the other end of uc.
func PeerCred(uc *net.UnixConn) (Cred, error) {
	u, err := sys.PeerCred(uc)
	if err != nil {
		return Cred{}, err
	}
	return Cred(u), nil
}

// PeerPidfd returns a pidfd of the process at the other end of uc (Linux
// 6.5+; otherwise the error wraps parallax.ErrNotSupported). The caller owns
// the file.
func PeerPidfd(uc *net.UnixConn) (*os.File, error) { return sys.PeerPidfd(uc) }

// Conn is a message connection over a unixpacket socket: one datagram per
// message, fds attached with SCM_RIGHTS.
//
// Use [NewConn]; the zero value is invalid. A Conn must not be copied. Send
// is safe for concurrent use; Recv must be called from one goroutine at a
// time (concurrent calls serialise). Close closes the socket, which makes a
// blocked Recv return; it is idempotent.
type Conn struct {
	uc     *net.UnixConn
	closed atomic.Bool
	rmu    sync.Mutex // guards rbuf and serialises Recv
	rbuf   []byte
}

// NewConn wraps uc, which must be a unixpacket connection. The Conn owns uc.
func NewConn(uc *net.UnixConn) *Conn {
	return &Conn{uc: uc}
}

// UnixConn returns the underlying socket (for deadlines and peer
// credentials). It stays owned by c.
func (c *Conn) UnixConn() *net.UnixConn { return c.uc }

// PeerCred returns the credentials of the peer process.
func (c *Conn) PeerCred() (Cred, error) { return PeerCred(c.uc) }

// PeerPidfd returns a pidfd of the peer process; the caller owns it.
func (c *Conn) PeerPidfd() (*os.File, error) { return PeerPidfd(c.uc) }

// Send encodes m with request id reqID and sends it with files attached.
// files must match wire.ExpectedFDs(m) in number and order; they stay owned
// by the caller. Encoding errors wrap wire.ErrInvalidArgument or
// parallax.ErrProtocol.
func (c *Conn) Send(reqID uint32, m wire.Message, files []*os.File) error {
	if m == nil {
		return fmt.Errorf("send nil message: %w", wire.ErrInvalidArgument)
	}
	if want := wire.ExpectedFDs(m); want != len(files) {
		return fmt.Errorf("send %s: %d fds attached, the message describes %d: %w", m.MessageType(), len(files), want, wire.ErrInvalidArgument)
	}
	b, err := wire.Encode(reqID, m)
	if err != nil {
		return err
	}
	if err := sys.SendMsg(c.uc, b, files); err != nil {
		if c.closed.Load() {
			return fmt.Errorf("send %s: %w", m.MessageType(), os.ErrClosed)
		}
		return fmt.Errorf("send %s: %w", m.MessageType(), err)
	}
	return nil
}

// Recv reads and decodes the next message. The returned files are owned by
// the caller; their number and order match wire.ExpectedFDs(env.Msg).
//
// A malformed, oversized or unknown message, a wrong number of fds, or more
// fds than sys.MaxFDsPerMessage yield an error wrapping parallax.ErrProtocol
// (any fds that came with it are closed); the connection is still usable but
// the peer is misbehaving. A peer that hung up yields io.EOF; after Close the
// error wraps os.ErrClosed.
func (c *Conn) Recv() (wire.Envelope, []*os.File, error) {
	c.rmu.Lock()
	defer c.rmu.Unlock()
	if c.rbuf == nil {
		c.rbuf = make([]byte, wire.MaxMessageSize)
	}
	n, files, err := sys.RecvMsg(c.uc, c.rbuf, sys.MaxFDsPerMessage)
	if err != nil {
		switch {
		case errors.Is(err, sys.ErrMessageTruncated):
			return wire.Envelope{}, nil, fmt.Errorf("receive message: datagram exceeds %d bytes: %w (%w)", wire.MaxMessageSize, parallax.ErrProtocol, err)
		case errors.Is(err, sys.ErrControlTruncated):
			return wire.Envelope{}, nil, fmt.Errorf("receive message: %w (%w)", parallax.ErrProtocol, err)
		case c.closed.Load():
			return wire.Envelope{}, nil, fmt.Errorf("receive message: %w", os.ErrClosed)
		}
		return wire.Envelope{}, nil, err
	}
	env, err := wire.Decode(c.rbuf[:n])
	if err != nil {
		closeFiles(files)
		return wire.Envelope{}, nil, err
	}
	if want := wire.ExpectedFDs(env.Msg); want != len(files) {
		closeFiles(files)
		return wire.Envelope{}, nil, fmt.Errorf("receive %s: %d fds attached, the message describes %d: %w", env.Type(), len(files), want, parallax.ErrProtocol)
	}
	return env, files, nil
}

// Close closes the socket. It is idempotent.
func (c *Conn) Close() error {
	if !c.closed.CompareAndSwap(false, true) {
		return nil
	}
	return c.uc.Close()
}

func closeFiles(files []*os.File) {
	for _, f := range files {
		if f != nil {
			f.Close()
		}
	}
}
