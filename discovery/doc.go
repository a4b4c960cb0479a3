// Package discovery is the client side of the Parallax control plane, plus
// the small server-side helpers the router builds on: resolving a domain's
// socket path, a message connection over a unixpacket socket that carries
// file descriptors ([Conn]), the control client ([Client], [Dial]) and a handshake-aware wrapper for accepted connections
// ([ServerConn]).
//
// Messages and their encoding live in internal/wire; this package moves
// them. One datagram is one message of at most wire.MaxMessageSize bytes;
// segment fds ride along with SCM_RIGHTS.
//
// A process normally holds one control connection per router, shared by all
// its publishers and subscribers: the client runtime (internal/clientrt)
// keeps that one registry; this package only dials.
package discovery
