// Package discovery says where a Parallax router listens: the domain a
// process uses by default ([DefaultDomain], $PARALLAX_DOMAIN) and the
// control socket path of a domain ([SocketPath], $PARALLAX_SOCKET,
// $XDG_RUNTIME_DIR). Publishers, subscribers and every other endpoint
// resolve their router this way; tools and deployment scripts can too.
//
// The control protocol itself is private to the library: applications
// talk to the router through packages publisher, subscriber, rpc, event,
// services and roudi (embedding and introspection).
package discovery
