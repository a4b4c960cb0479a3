// Package rpc is request/response over shared memory: a [Client] loans a
// request chunk from its own data segment, writes it and sends it to one
// server of the service; the [Server] takes it, loans response chunks from
// its own data segment and sends them to that client only; the client takes
// the responses matched to its request. A request may get a stream of
// responses, the last one marked by the server ([Server.Send] with end).
//
// Both directions are zero-copy: each side writes only its own data
// segment (the router's owned memory model).
// The design is in docs/design/request-response.md:
//
//   - Many clients per service, one or more servers: each call goes to one
//     server, round-robin over the servers the client is connected to.
//   - Correlation: a per-client request id travels in the chunk header
//     (UserSeq) of the request and of each of its responses.
//   - Per-call deadlines come from the context; at most
//     [Options.MaxInFlight] calls per client are pending at once (one more
//     fails with [ErrInFlight], which wraps parallax.ErrLimit).
//   - A server that dies or closes fails the calls pending on it at once
//     with [ErrServerGone]; memory is reclaimed by its owners exactly, as
//     for publish/subscribe. A server that dies while no router runs
//     cannot be seen dying: its pending calls (and calls sent to it
//     meanwhile) fail with [ErrServerGone] once a restarted router's
//     resume grace ends without it, or at their deadline if that comes
//     first.
//   - Access rules: calling a service needs the publish side of the
//     [[access]] rule of its name, serving it the subscribe side; request
//     and response types are checked at connect (parallax.ErrIncompatibleType).
package rpc
