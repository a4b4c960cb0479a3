//go:build !linux

package sys

import (
	"errors"
	"fmt"
	"net"
	"os"

	"github.com/parallax-ipc/parallax"
)

// MaxFDsPerMessage is the most file descriptors one message may carry.
const MaxFDsPerMessage = 253

// Errors returned by [SendMsg] and [RecvMsg].
var (
	ErrControlTruncated = errors.New("control message truncated (too many file descriptors)")
	ErrMessageTruncated = errors.New("message truncated (larger than the receive buffer)")
	ErrTooManyFDs       = errors.New("too many file descriptors for one message")
)

// Ucred is the identity of a socket peer.
type Ucred struct {
	PID int32
	UID uint32
	GID uint32
}

var errSocketNotSupported = fmt.Errorf("unixpacket fd passing and peer credentials need Linux: %w", parallax.ErrNotSupported)

// SendMsg is not supported off Linux.
func SendMsg(c *net.UnixConn, b []byte, files []*os.File) error { return errSocketNotSupported }

// RecvMsg is not supported off Linux.
func RecvMsg(c *net.UnixConn, b []byte, maxFDs int) (int, []*os.File, error) {
	return 0, nil, errSocketNotSupported
}

// PeerCred is not supported off Linux.
func PeerCred(c *net.UnixConn) (Ucred, error) { return Ucred{}, errSocketNotSupported }

// PeerPidfd is not supported off Linux.
func PeerPidfd(c *net.UnixConn) (*os.File, error) { return nil, errSocketNotSupported }
