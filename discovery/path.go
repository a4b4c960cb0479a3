package discovery

import (
	"errors"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strconv"

	"github.com/parallax-ipc/parallax/internal/wire"
)

// Environment variables consulted by [DefaultDomain] and [SocketPath].
const (
	EnvDomain = "PARALLAX_DOMAIN" // domain name used when none is given
	EnvSocket = "PARALLAX_SOCKET" // socket path overriding the computed one
)

// DefaultDomainName is the domain used when neither the caller nor
// PARALLAX_DOMAIN names one.
const DefaultDomainName = "default"

// DefaultDomain returns PARALLAX_DOMAIN if set, else [DefaultDomainName],
// after validating it (wire.ValidateDomain).
func DefaultDomain() (string, error) {
	d := os.Getenv(EnvDomain)
	if d == "" {
		return DefaultDomainName, nil
	}
	if err := wire.ValidateDomain(d); err != nil {
		return "", fmt.Errorf("%s: %w", EnvDomain, err)
	}
	return d, nil
}

// SocketPath returns the control socket path of domain ("" means
// [DefaultDomain]): PARALLAX_SOCKET if set, else
// $XDG_RUNTIME_DIR/parallax/<domain>.sock, else
// /tmp/parallax-<uid>/<domain>.sock.
func SocketPath(domain string) (string, error) {
	if domain == "" {
		var err error
		if domain, err = DefaultDomain(); err != nil {
			return "", err
		}
	} else if err := wire.ValidateDomain(domain); err != nil {
		return "", err
	}
	if p := os.Getenv(EnvSocket); p != "" {
		return p, nil
	}
	if dir := os.Getenv("XDG_RUNTIME_DIR"); dir != "" {
		return filepath.Join(dir, "parallax", domain+".sock"), nil
	}
	return filepath.Join(os.TempDir(), "parallax-"+strconv.Itoa(os.Getuid()), domain+".sock"), nil
}

// ErrRouterRunning reports that [Listen] found a live router on the path.
var ErrRouterRunning = errors.New("a router is already listening")

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
