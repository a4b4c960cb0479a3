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
// from one goroutine. Close closes the socket.
type ServerConn struct {
	*Conn
	// Cred is the peer's identity from SO_PEERCRED, taken at accept.
	Cred Cred
	// Version is the protocol version negotiated by ReadHello.
	Version uint16

	// accepted version range; 0 means wire.MinVersion..wire.Version
	// (tests override them).
	minVersion, maxVersion uint16
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
// caller).
func (s *ServerConn) Reply(reqID uint32, m wire.Message, files []*os.File) error {
	return s.Send(reqID, m, files)
}

// ReplyError answers request reqID (0 if unknown) with an Error message
// carrying wire.CodeOf(err) and err's text.
func (s *ServerConn) ReplyError(reqID uint32, err error) error {
	return s.Send(reqID, wire.NewError(err), nil)
}

// Push sends a router-initiated message (request id 0) with its fds.
func (s *ServerConn) Push(m wire.Message, files []*os.File) error {
	return s.Send(0, m, files)
}
