// Package roudi is the Parallax router: the daemon that owns a domain's
// shared memory, keeps the registry of clients, topics, publishers and
// subscribers, wires every publisher to every subscriber of its topic with
// a ring in the management segment, and reclaims everything a dead process
// held.
//
// The package has two halves, in the style of etcd-io/raft's RawNode:
//
//   - [Router], the deterministic core. It owns no goroutines, sockets,
//     clock or shared memory. Events go in through [Router.Step]
//     ([ClientConnected], [ClientRequest], [ProcessExited], [Tick], ...);
//     actions come out of [Router.Ready] ([Reply], [ConnectionAdded],
//     [FormatRing], [ReclaimClient], [FreeRegion], [CloseConn], [Log], ...).
//     The core allocates ring and notifier regions inside a management
//     arena it is given, but never touches the bytes: the server formats
//     and reclaims them when the actions say so. It is tested with scripts
//     in testdata/ and a property test.
//   - The server around it (server.go), which does the I/O: accepting
//     control connections, SCM_RIGHTS, timers and process-exit monitoring,
//     translating wire messages into events and actions into wire messages
//     and shared-memory writes.
//
// A removed connection's ring (and a closed subscriber's notifier) is freed
// when every surviving side told of the removal has released it
// ([ReleaseConnection], which client runtimes send once their endpoints
// have let go of the ring), or has died; [DefaultQuarantine] bounds the
// wait for a client that stopped reading its control socket. Until then the
// bytes are never reused, so a subscriber still takes what a closed
// publisher had queued and no stale reader meets another connection's
// entries.
//
// One router serves a domain: [New] takes a flock on
// <runtime_dir>/<domain>.lock and holds it until [Server.Close]; a second
// router of the domain fails with an error wrapping
// discovery.ErrRouterRunning naming the live one (parallax-roudi exits
// with code 3). Only with that lock held does a router adopt a dead
// router's segments. Until the adopted clients resume or their grace
// period ends, they count as attached ([Router.Sweep]), and a client
// resumes only as the same process (pid and uid) with the token its
// Welcome carried (core_identity.go).
//
// [Config] is the router's TOML configuration; an embedded default
// (default.toml) needs no file. [LoadConfig], [ParseConfig] and
// [Config.Validate] report problems as [*ConfigError] values naming the key.
package roudi
