//go:build linux

package sys

import (
	"errors"
	"fmt"
	"io"
	"net"
	"os"

	"golang.org/x/sys/unix"

	"github.com/parallax-ipc/parallax"
)

// MaxFDsPerMessage is the kernel's SCM_MAX_FD: the most file descriptors one
// sendmsg may carry.
const MaxFDsPerMessage = 253

// Errors returned by [SendMsg] and [RecvMsg].
var (
	// ErrControlTruncated reports that a received message carried more
	// file descriptors than the receiver made room for (MSG_CTRUNC). The
	// descriptors that did arrive were closed; the others are lost.
	ErrControlTruncated = errors.New("control message truncated (too many file descriptors)")
	// ErrMessageTruncated reports a datagram larger than the receive
	// buffer (MSG_TRUNC); the excess bytes were discarded by the kernel.
	ErrMessageTruncated = errors.New("message truncated (larger than the receive buffer)")
	// ErrTooManyFDs reports an attempt to send more than
	// [MaxFDsPerMessage] descriptors in one message.
	ErrTooManyFDs = errors.New("too many file descriptors for one message")
)

// Socket errnos callers compare with errors.Is.
const (
	ENOPROTOOPT  = unix.ENOPROTOOPT
	ECONNREFUSED = unix.ECONNREFUSED
	EPIPE        = unix.EPIPE
)

// Ucred is the identity of a socket peer as the kernel recorded it when the
// peer connected (SO_PEERCRED). PID is not reuse-safe: after the peer exits
// the kernel keeps reporting the old pid; use [PeerPidfd] to track the peer.
type Ucred struct {
	PID int32
	UID uint32
	GID uint32
}

// SendMsg writes b as one datagram on c with files attached as SCM_RIGHTS.
// The files stay owned by the caller (the kernel duplicates them into the
// message). c should be a unixpacket (SOCK_SEQPACKET) connection so that one
// write is one message.
func SendMsg(c *net.UnixConn, b []byte, files []*os.File) error {
	if len(files) > MaxFDsPerMessage {
		return fmt.Errorf("send %d fds: %w", len(files), ErrTooManyFDs)
	}
	var werr error
	err := withFDs(files, make([]int, 0, len(files)), func(fds []int) {
		var oob []byte
		if len(fds) > 0 {
			oob = unix.UnixRights(fds...)
		}
		n, oobn, err := c.WriteMsgUnix(b, oob, nil)
		switch {
		case err != nil:
			werr = err
		case n != len(b) || oobn != len(oob):
			werr = fmt.Errorf("short write: %d of %d bytes, %d of %d control bytes: %w", n, len(b), oobn, len(oob), io.ErrShortWrite)
		}
	})
	if err != nil {
		return err
	}
	return werr
}

// withFDs calls fn with the raw descriptors of files, holding each file's
// descriptor through RawConn.Control so that a concurrent Close cannot
// recycle it while the kernel copies it. Unlike File.Fd it does not switch
// the file to blocking mode.
func withFDs(files []*os.File, fds []int, fn func([]int)) error {
	if len(files) == 0 {
		fn(fds)
		return nil
	}
	if files[0] == nil {
		return fmt.Errorf("attach fd %d: %w", len(fds), os.ErrInvalid)
	}
	rc, err := files[0].SyscallConn()
	if err != nil {
		return fmt.Errorf("attach %s: %w", files[0].Name(), err)
	}
	var inner error
	if err := rc.Control(func(fd uintptr) {
		inner = withFDs(files[1:], append(fds, int(fd)), fn)
	}); err != nil {
		return fmt.Errorf("attach %s: %w", files[0].Name(), err)
	}
	return inner
}

// RecvMsg reads one datagram from c into b, accepting up to maxFDs file
// descriptors (at most [MaxFDsPerMessage]). It returns the byte count and the
// received descriptors as *os.File values the caller owns (they carry
// FD_CLOEXEC). A peer that hung up yields io.EOF.
//
// If the datagram carried more descriptors than maxFDs (MSG_CTRUNC) or more
// bytes than len(b) (MSG_TRUNC), every descriptor that arrived is closed and
// the error wraps [ErrControlTruncated] or [ErrMessageTruncated]; the socket
// stays usable for the next message.
func RecvMsg(c *net.UnixConn, b []byte, maxFDs int) (int, []*os.File, error) {
	maxFDs = min(max(maxFDs, 1), MaxFDsPerMessage)
	oob := make([]byte, unix.CmsgSpace(4*maxFDs))
	n, oobn, flags, _, err := c.ReadMsgUnix(b, oob)
	var files []*os.File
	if oobn > 0 {
		var perr error
		files, perr = parseRights(oob[:oobn])
		if perr != nil && err == nil {
			err = perr
		}
	}
	switch {
	case err != nil:
	case flags&unix.MSG_CTRUNC != 0:
		err = fmt.Errorf("receive message (room for %d fds): %w", maxFDs, ErrControlTruncated)
	case flags&unix.MSG_TRUNC != 0:
		err = fmt.Errorf("receive message (buffer of %d bytes): %w", len(b), ErrMessageTruncated)
	case n == 0 && oobn == 0:
		err = io.EOF
	}
	if err != nil {
		closeFiles(files)
		return 0, nil, err
	}
	return n, files, nil
}

// parseRights turns every SCM_RIGHTS control message in oob into files. On a
// parse error it still returns the files it could recover, so the caller
// closes them.
func parseRights(oob []byte) ([]*os.File, error) {
	msgs, err := unix.ParseSocketControlMessage(oob)
	if err != nil {
		return nil, fmt.Errorf("parse control messages: %w", err)
	}
	var files []*os.File
	var firstErr error
	for i := range msgs {
		if msgs[i].Header.Level != unix.SOL_SOCKET || msgs[i].Header.Type != unix.SCM_RIGHTS {
			continue
		}
		fds, err := unix.ParseUnixRights(&msgs[i])
		if err != nil {
			if firstErr == nil {
				firstErr = fmt.Errorf("parse SCM_RIGHTS: %w", err)
			}
			continue
		}
		for _, fd := range fds {
			files = append(files, os.NewFile(uintptr(fd), fmt.Sprintf("scm-rights:%d", fd)))
		}
	}
	return files, firstErr
}

func closeFiles(files []*os.File) {
	for _, f := range files {
		if f != nil {
			f.Close()
		}
	}
}

// control runs fn on the raw descriptor of c.
func control(c *net.UnixConn, op string, fn func(fd int) error) error {
	rc, err := c.SyscallConn()
	if err != nil {
		return fmt.Errorf("%s: %w", op, err)
	}
	var inner error
	if err := rc.Control(func(fd uintptr) { inner = fn(int(fd)) }); err != nil {
		return fmt.Errorf("%s: %w", op, err)
	}
	return inner
}

// PeerCred returns the pid, uid and gid of the process at the other end of c
// as recorded at connect time (SO_PEERCRED).
func PeerCred(c *net.UnixConn) (Ucred, error) {
	var cred Ucred
	err := control(c, "get SO_PEERCRED", func(fd int) error {
		u, err := unix.GetsockoptUcred(fd, unix.SOL_SOCKET, unix.SO_PEERCRED)
		if err != nil {
			return fmt.Errorf("get SO_PEERCRED: %w", err)
		}
		cred = Ucred{PID: u.Pid, UID: u.Uid, GID: u.Gid}
		return nil
	})
	return cred, err
}

// PeerPidfd returns a pidfd for the process at the other end of c, taken
// race-free by the kernel at connect time (SO_PEERPIDFD, Linux 6.5+). The
// caller owns the returned file. On kernels without SO_PEERPIDFD the error
// wraps [parallax.ErrNotSupported].
func PeerPidfd(c *net.UnixConn) (*os.File, error) {
	var f *os.File
	err := control(c, "get SO_PEERPIDFD", func(fd int) error {
		pfd, err := unix.GetsockoptInt(fd, unix.SOL_SOCKET, unix.SO_PEERPIDFD)
		if err != nil {
			if errors.Is(err, unix.ENOPROTOOPT) || errors.Is(err, unix.EINVAL) {
				return fmt.Errorf("get SO_PEERPIDFD (needs Linux 6.5+): %w (%w)", parallax.ErrNotSupported, err)
			}
			return fmt.Errorf("get SO_PEERPIDFD: %w", err)
		}
		unix.CloseOnExec(pfd)
		f = os.NewFile(uintptr(pfd), fmt.Sprintf("pidfd:%d", pfd))
		return nil
	})
	return f, err
}
