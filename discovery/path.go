package discovery

import (
	"errors"
	"fmt"
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
// after validating it (a domain is 1 to 64 letters, digits, '.', '_' or '-';
// a bad one gives an error wrapping parallax.ErrInvalidArgument).
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

// ErrRouterRunning reports that a router is already listening on the
// socket path a new router was to listen on.
var ErrRouterRunning = errors.New("a router is already listening")
