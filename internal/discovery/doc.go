// Package discovery is the control plane's transport, for the client
// library and the router: a message connection over a unixpacket socket
// that carries file descriptors ([Conn]), the control client ([Client],
// [Dial]), the router's listener ([Listen]) and a handshake-aware wrapper
// for accepted connections ([ServerConn]). How a domain names its socket
// is public: package github.com/parallax-ipc/parallax/discovery, which this
// package forwards to.
//
// Messages and their encoding live in internal/wire; this package moves
// them. One datagram is one message of at most wire.MaxMessageSize bytes;
// segment fds ride along with SCM_RIGHTS.
//
// A process normally holds one control connection per router, shared by all
// its publishers and subscribers: the client runtime (internal/clientrt)
// keeps that one registry; this package only dials.
package discovery
