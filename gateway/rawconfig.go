package gateway

import (
	"fmt"
	"net"
	"net/url"
	"strings"
	"time"

	"github.com/nats-io/nats.go"
)

// rawConfig is what the raw import connection (rawimport.go) needs from
// the options: plain TCP servers and user/password or token
// authentication.
type rawConfig struct {
	servers      []rawServer
	name         string
	timeout      time.Duration // dial and handshake
	pingInterval time.Duration
	maxPingsOut  int
}

// rawServer is one server of Options.NATSURL.
type rawServer struct {
	addr              string // host:port
	user, pass, token string
}

// rawConfigFor returns the raw import connection's configuration for
// opts, or why core-NATS imports must go through nats.go instead: the
// options force it, or ask for something the raw connection does not do
// (TLS, nkeys, JWT or creds files, a token handler, a custom dialer,
// websocket, an in-process server).
func rawConfigFor(opts *Options, id string) (rawConfig, string) {
	switch {
	case len(opts.Import) == 0:
		return rawConfig{}, "no import"
	case opts.Stream != "":
		return rawConfig{}, "JetStream imports use nats.go"
	case opts.ImportWithNATSGo:
		return rawConfig{}, "Options.ImportWithNATSGo"
	}
	no := nats.GetDefaultOptions()
	for _, o := range opts.NATSOptions {
		if err := o(&no); err != nil {
			return rawConfig{}, fmt.Sprintf("nats.Option: %v", err)
		}
	}
	switch {
	case no.Secure || no.TLSConfig != nil || no.TLSCertCB != nil || no.RootCAsCB != nil || no.TLSHandshakeFirst:
		return rawConfig{}, "TLS"
	case no.UserJWT != nil || no.Nkey != "" || no.SignatureCB != nil:
		return rawConfig{}, "nkey or JWT authentication"
	case no.TokenHandler != nil || no.UserInfo != nil:
		return rawConfig{}, "token or user handler"
	case no.CustomDialer != nil || no.InProcessServer != nil || no.ProxyPath != "" || no.Compression:
		return rawConfig{}, "custom dialer, in-process server, proxy path or compression"
	}
	c := rawConfig{name: "parallax-gateway " + id + " import", timeout: no.Timeout,
		pingInterval: no.PingInterval, maxPingsOut: no.MaxPingsOut}
	if c.timeout <= 0 {
		c.timeout = nats.DefaultTimeout
	}
	if c.pingInterval <= 0 {
		c.pingInterval = nats.DefaultPingInterval
	}
	if c.maxPingsOut <= 0 {
		c.maxPingsOut = nats.DefaultMaxPingOut
	}
	for s := range strings.SplitSeq(opts.NATSURL, ",") {
		if s = strings.TrimSpace(s); s == "" {
			continue
		}
		srv, why := parseRawURL(s)
		if why != "" {
			return rawConfig{}, why
		}
		if srv.user == "" && srv.token == "" {
			srv.user, srv.pass, srv.token = no.User, no.Password, no.Token
		}
		c.servers = append(c.servers, srv)
	}
	if len(c.servers) == 0 {
		return rawConfig{}, "no NATS URL"
	}
	return c, ""
}

// parseRawURL parses one NATS URL as nats.go does (scheme nats:// by
// default, port 4222 by default, a lone user name is a token).
func parseRawURL(s string) (rawServer, string) {
	if !strings.Contains(s, "://") {
		s = "nats://" + s
	}
	u, err := url.Parse(s)
	if err != nil {
		return rawServer{}, fmt.Sprintf("URL: %v", err)
	}
	if !strings.EqualFold(u.Scheme, "nats") {
		return rawServer{}, fmt.Sprintf("scheme %q", u.Scheme)
	}
	port := u.Port()
	if port == "" {
		port = "4222"
	}
	srv := rawServer{addr: net.JoinHostPort(u.Hostname(), port)}
	if u.User != nil {
		if pass, ok := u.User.Password(); ok {
			srv.user, srv.pass = u.User.Username(), pass
		} else {
			srv.token = u.User.Username()
		}
	}
	return srv, ""
}
