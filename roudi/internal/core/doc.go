// Package core is the Parallax router's deterministic core, in the style of
// etcd-io/raft's RawNode: the registry of clients, topics, publishers,
// subscribers and connections, the region allocator of the management
// arena, and every decision the router makes about them (types, limits,
// access rules, who is told what when a client goes, when a removed ring
// may be reused, who may resume after a restart, which pools grow within
// which limits and when a dedicated pool retires: growth.go).
//
// [Router] owns no goroutines, sockets, clock or shared memory. Events go
// in through [Router.Step] ([ClientConnected], [ClientRequest],
// [ProcessExited], [Tick], ...); actions come out of [Router.Ready]
// ([Reply], [ConnectionAdded], [FormatRing], [ReclaimClient],
// [FreeRegion], [CloseConn], [Log], ...). The router's server (package
// roudi) performs the actions: it moves bytes and file descriptors and
// formats and drains the regions the actions name, and decides nothing.
// Where a decision needs shared memory, the server reads it and steps the
// facts: reports of corrupted rings ([PeerReported], [RingReported];
// guard.go, blame.go) are verified and acted on here, and at the end of a
// restart's grace period the core names the arena ranges to drain of
// orphaned rings ([DrainOrphans]). Two disconnects stay in the server:
// the per-connection request rate limit and the cut of a client whose
// outgoing queue overflows are flow control of one socket (kept on wall
// time by that connection's goroutines, so a flood costs the core
// nothing), not registry decisions; the core sees their outcome as a
// [ClientDisconnected].
//
// The package may import only the standard library's pure packages and the
// root parallax package (make check-deps enforces the list), so it stays
// testable without sockets: datadriven scripts in testdata/ (run with
// -rewrite to update their expected output) and a property test against
// the invariants in invariants_test.go.
//
// A removed connection's ring (and a closed subscriber's notifier) is freed
// when every surviving side told of the removal has released it
// ([ReleaseConnection], which client runtimes send once their endpoints
// have let go of the ring), or has died; [DefaultQuarantine] bounds the
// wait for a client that stopped reading its control socket. Until then the
// bytes are never reused, so a subscriber still takes what a closed
// publisher had queued and no stale reader meets another connection's
// entries.
package core
