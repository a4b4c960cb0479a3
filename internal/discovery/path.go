package discovery

import (
	"errors"
	"fmt"
	"net"
	"os"
	"path/filepath"

	pub "github.com/parallax-ipc/parallax/discovery"
)

// Environment variables and the default domain, as in the public package.
const (
	EnvDomain         = pub.EnvDomain
	EnvSocket         = pub.EnvSocket
	DefaultDomainName = pub.DefaultDomainName
)

// ErrRouterRunning is the public [pub.ErrRouterRunning]: [Listen] found a
// live router on the path.
var ErrRouterRunning = pub.ErrRouterRunning

// DefaultDomain is [pub.DefaultDomain].
func DefaultDomain() (string, error) { return pub.DefaultDomain() }

// SocketPath is [pub.SocketPath].
func SocketPath(domain string) (string, error) { return pub.SocketPath(domain) }

// Listen creates the directory of path (mode 0700) and listens on path for
// unixpacket connections. A stale socket file left by a dead router is
// removed; a live one yields an error wrapping [ErrRouterRunning]. Closing
// the listener removes the socket file.
func Listen(path string) (*net.UnixListener, error) {
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return nil, fmt.Errorf("listen on %s: %w", path, err)
	}
	if _, err := os.Lstat(path); err == nil {
		if c, err := net.Dial("unixpacket", path); err == nil {
			c.Close()
			return nil, fmt.Errorf("listen on %s: %w", path, ErrRouterRunning)
		}
		if err := os.Remove(path); err != nil && !errors.Is(err, os.ErrNotExist) {
			return nil, fmt.Errorf("listen on %s: remove stale socket: %w", path, err)
		}
	}
	l, err := net.ListenUnix("unixpacket", &net.UnixAddr{Name: path, Net: "unixpacket"})
	if err != nil {
		return nil, fmt.Errorf("listen on %s: %w", path, err)
	}
	l.SetUnlinkOnClose(true)
	return l, nil
}
