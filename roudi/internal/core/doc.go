// Package core is the Parallax router's deterministic core, in the style of
// etcd-io/raft's RawNode: the registry of clients, topics, publishers,
// subscribers and connections, the sizes and limits of every publisher's
// owned memory, and every decision the router makes about them (types,
// limits, access rules, who gets which segment fd read-write or read-only,
// who is told what when a client goes, when a connection segment may be
// closed, who may resume after a restart, which data segments grow or
// retire within which limits: memory.go, memory_grow.go).
//
// [Router] owns no goroutines, sockets, clock or shared memory. Events go
// in through [Router.Step] ([ClientConnected], [ClientRequest],
// [ProcessExited], [Tick], ...); actions come out of [Router.Ready]
// ([Reply], [ConnectionAdded], [CreateDataSegment], [CreateConnSegment],
// [GrantSegments], [ReclaimClient], [CloseConn], [Log], ...). The router's
// server (package roudi) performs the actions: it creates, seals and
// formats segments, moves bytes and file descriptors, and decides nothing.
// No decision needs shared memory: the server never reads memory a client
// can write, and the core believes a client's report only about that
// client's own publishers (guard_owned.go: a report by an end of a
// connection cuts that connection and nothing else). Two disconnects stay
// in the server: the per-connection request rate limit and the cut of a
// client whose outgoing queue overflows are flow control of one socket
// (kept on wall time by that connection's goroutines, so a flood costs the
// core nothing), not registry decisions; the core sees their outcome as a
// [ClientDisconnected].
//
// The package may import only the standard library's pure packages and the
// root parallax package (make check-deps enforces the list), so it stays
// testable without sockets: datadriven scripts in testdata/ (run with
// -rewrite to update their expected output) and a property test against
// the invariants in invariants_test.go.
//
// A removed connection's segment is closed when every surviving end told
// of the removal has released it ([ReleaseConnection], which client
// runtimes send once their endpoints have let go of it), or has died or
// been disconnected. Until then a subscriber still takes what a closed
// publisher had queued; a dead publisher's data segments stay counted (a
// tombstone) while any connection still names them.
package core
