package discovery

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"

	"github.com/parallax-ipc/parallax"
	"github.com/parallax-ipc/parallax/internal/wire"
)

// ServerConn is the router's side of one accepted control connection: a
// [Conn] plus the peer's credentials, the version handshake and reply
// helpers. The accept loop and request handling are the router's.
//
// Use [NewServerConn]; the zero value is invalid. Goroutine safety is that
// of [Conn]: the send helpers are safe for concurrent use, reads must come
// from one goroutine. Once [ServerConn.StartWriter] was called, the send
// helpers queue instead of writing and never block on the peer. Close
// closes the socket.
type ServerConn struct {
	*Conn
	// Cred is the peer's identity from SO_PEERCRED, taken at accept.
	Cred Cred
	// Version is the protocol version negotiated by ReadHello.
	Version uint16

	// accepted version range; 0 means wire.MinVersion..wire.Version
	// (tests override them).
	minVersion, maxVersion uint16

	q *outQueue // set by StartWriter
}

// StartWriter gives s a bounded outgoing queue and the goroutine that
// writes it (see [QueueOptions]): from then on Reply, ReplyError and Push
// encode the message, queue it with duplicates of its files and return
// without waiting for the peer. A peer that lets the queue overflow or
// stalls a write beyond the timeout is cut: the socket is closed, so a
// blocked read returns, and OnStall is called once. Call it once, before
// s is used by more than one goroutine. The writer exits when s is closed
// (Close, or CloseWhenFlushed once the queue is written).
func (s *ServerConn) StartWriter(opts QueueOptions) {
	s.q = newOutQueue(s.Conn, opts)
	go s.q.run()
}

// CloseWhenFlushed accepts no more messages and closes the socket once what
// is queued was written, within one write timeout in all (what is left
// then is dropped). Without a writer it is Close. It does not wait; it is
// idempotent.
func (s *ServerConn) CloseWhenFlushed() {
	if s.q == nil {
		_ = s.Conn.Close()
		return
	}
	s.q.closeWhenFlushed()
}

// Close closes the socket at once, drops what is queued (closing its
// files) and waits for the writer to exit. It is idempotent.
func (s *ServerConn) Close() error {
	if s.q == nil {
		return s.Conn.Close()
	}
	s.q.close()
	return nil
}

// Done returns a channel closed once the socket is closed and the writer
// has exited (closed at once without a writer, once closed).
func (s *ServerConn) Done() <-chan struct{} {
	if s.q == nil {
		c := make(chan struct{})
		close(c)
		return c
	}
	return s.q.done
}

// send writes m at once, or queues it when a writer runs. files stay owned
// by the caller either way.
func (s *ServerConn) send(reqID uint32, m wire.Message, files []*os.File) error {
	if s.q == nil {
		return s.Send(reqID, m, files)
	}
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
	return s.q.put(m.MessageType(), b, files)
}

// NewServerConn wraps an accepted unixpacket connection and reads the
// peer's credentials. The ServerConn owns uc, also when an error is
// returned (uc is then closed).
func NewServerConn(uc *net.UnixConn) (*ServerConn, error) {
	cred, err := PeerCred(uc)
	if err != nil {
		uc.Close()
		return nil, fmt.Errorf("accept control connection: %w", err)
	}
	return &ServerConn{Conn: NewConn(uc), Cred: cred}, nil
}

func (s *ServerConn) versions() (lo, hi uint16) {
	if s.maxVersion == 0 {
		return wire.MinVersion, wire.Version
	}
	return s.minVersion, s.maxVersion
}

// ReadHello reads the client's first message and negotiates the protocol
// version (the highest both sides speak), stored in s.Version. It returns
// the Hello's request id, to be echoed in the Welcome. On a malformed first
// message it replies Error{CodeProtocol} and returns an error wrapping
// parallax.ErrProtocol; on a version mismatch it replies
// Error{CodeProtocolVersion} naming both ranges and returns an error
// wrapping parallax.ErrProtocolVersion. The caller closes s on error.
func (s *ServerConn) ReadHello(ctx context.Context) (reqID uint32, hello *wire.Hello, err error) {
	env, files, err := recvCtx(ctx, s.Conn)
	if err != nil {
		if errors.Is(err, parallax.ErrProtocol) {
			_ = s.ReplyError(0, err)
		}
		return 0, nil, fmt.Errorf("read Hello from pid %d: %w", s.Cred.PID, err)
	}
	closeFiles(files) // a Hello carries none; Recv checked
	h, ok := env.Msg.(*wire.Hello)
	if !ok {
		err := fmt.Errorf("first message is %s, want Hello: %w", env.Type(), parallax.ErrProtocol)
		_ = s.ReplyError(env.ReqID, err)
		return 0, nil, fmt.Errorf("read Hello from pid %d: %w", s.Cred.PID, err)
	}
	lo, hi := s.versions()
	v := min(h.Version, hi)
	if v < max(h.MinVersion, lo) {
		err := fmt.Errorf("router speaks protocol versions %d..%d, client %q (pid %d) speaks %d..%d: %w",
			lo, hi, h.Name, s.Cred.PID, h.MinVersion, h.Version, parallax.ErrProtocolVersion)
		_ = s.ReplyError(env.ReqID, err)
		return 0, nil, err
	}
	s.Version = v
	return env.ReqID, h, nil
}

// ReadRequest reads the next request from the client. A malformed message,
// or one that is not a request, is answered with Error{CodeProtocol} and
// returned as an error wrapping parallax.ErrProtocol: the caller should
// close s. A client that hung up yields io.EOF. The caller owns the files.
func (s *ServerConn) ReadRequest() (wire.Envelope, []*os.File, error) {
	env, files, err := s.Recv()
	if err != nil {
		if errors.Is(err, parallax.ErrProtocol) {
			_ = s.ReplyError(0, err)
		}
		return wire.Envelope{}, nil, err
	}
	if _, ok := wire.ReplyType(env.Type()); !ok || env.Type() == wire.TypeHello {
		closeFiles(files)
		err := fmt.Errorf("%s is not a request a client may send: %w", env.Type(), parallax.ErrProtocol)
		_ = s.ReplyError(env.ReqID, err)
		return wire.Envelope{}, nil, err
	}
	return env, files, nil
}

// Reply answers request reqID with m and its fds (still owned by the
// caller). With a writer started it only queues: the error then wraps
// ErrQueueFull when this message overflowed the queue (the connection is
// cut) and os.ErrClosed once the connection was cut or closed.
func (s *ServerConn) Reply(reqID uint32, m wire.Message, files []*os.File) error {
	return s.send(reqID, m, files)
}

// ReplyError answers request reqID (0 if unknown) with an Error message
// carrying wire.CodeOf(err) and err's text.
func (s *ServerConn) ReplyError(reqID uint32, err error) error {
	return s.send(reqID, wire.NewError(err), nil)
}

// Push sends a router-initiated message (request id 0) with its fds.
func (s *ServerConn) Push(m wire.Message, files []*os.File) error {
	return s.send(0, m, files)
}
