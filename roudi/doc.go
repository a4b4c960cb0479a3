// Package roudi is the Parallax router: the daemon that creates a domain's
// shared memory (each publisher's data segments, each connection's
// segment), keeps the registry of clients, topics, publishers and
// subscribers, wires every publisher to every subscriber of its topic
// with a connection segment, and tells the survivors when a process dies.
//
// An embedder needs [Config] (the router's TOML configuration; an embedded
// default, default.toml, needs no file; [LoadConfig], [ParseConfig] and
// [Config.Validate] report problems as [*ConfigError] values naming the
// key), [Start] to run a router (it returns once clients can connect, and
// [Server.Close] stops it), its introspection methods, and [Server.Close].
// [New] and [Server.Serve] are for programs that run the serving loop
// themselves (parallax-roudi does). The router logs to [Options.Logger]
// when set, otherwise as text on standard error at [Config.LogLevel].
//
// The router has two halves, in the style of etcd-io/raft's RawNode and
// node: a deterministic core (an internal package) that holds the
// registry and makes every decision, with no goroutines, sockets, clock or
// shared memory, tested with scripts; and the [Server] around it, which
// does the I/O: accepting control connections, SCM_RIGHTS, timers and
// process-exit monitoring, translating wire messages into the core's
// events and its actions into wire messages and shared-memory writes.
//
// One router serves a domain: [New] takes a flock on
// <runtime_dir>/<domain>.lock and holds it until [Server.Close]; a second
// router of the domain fails with an error wrapping
// discovery.ErrRouterRunning naming the live one (parallax-roudi exits
// with code 3). Only with that lock held does a router adopt a dead
// router's segments. Until the adopted clients resume or their grace
// period ends, they count as attached (the core's sweep verdict), and a
// client resumes only as the same process (pid and uid) with the token its
// Welcome carried (the core decides; the server keeps the records in
// <runtime_dir>/<domain>.clients, out of reach of clients).
//
// In the owned memory model ([memory] model = "owned", the default) the
// router knows each publisher's data segments but never reads memory a
// client can write, so how many chunks are in use is the publisher's own
// report (a memory report the client runtime sends about once a second
// while it changes): [Introspection].PublisherSegments, `parallax pools` and the
// parallax_publisher_* metrics show it as reported. The router takes
// reports only about the reporting client's own live publishers and no
// more chunks than it created for them, so a lying client can misstate
// its own use and nobody else's.
package roudi
