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
// events and its actions into wire messages and segments.
//
// # Memory
//
// The router creates all of a domain's shared memory and maps none of it
// for long. For each publisher it creates data segments (package dataseg:
// a header, a chunk-header table and payload chunks of one size class)
// named "plx:<domain>:p<pub>.<index>", and for each publisher–subscriber
// connection one connection segment (package ringbuf: data ring, return
// ring and two futex wake blocks) named "plx:<domain>:c<conn>". Each is a
// memfd (a hugetlb memfd for large data segments, [Publishers.Hugepages];
// an unlinked file with [Memory.Backing] "file"), sealed against
// shrinking, growing and further seals, and fchmod 0600. The router maps a
// segment once to write its header (data) or lay it out (connection),
// unmaps it, and keeps only fds: for a data segment a read-write one and a
// read-only twin (/proc/self/fd reopened O_RDONLY), for a connection a
// read-write one. It grants, as the core decides from the [[access]]
// rules: the publisher its data segments read-write; each connected
// subscriber those data segments read-only and their connection
// read-write; nobody else anything. The router never reads memory a
// client can write.
//
// The core sizes a publisher's segments so that chunks ≥ MaxLoans +
// History + Σ over its connections of min(queue capacity + max held,
// max(2, [publishers] connection_budget / chunk size)), adds a growth
// segment (doubling) when a new connection breaks that, a dedicated
// segment for a loan larger than the publisher's class, and refuses
// anything beyond [Limits] (max_publisher_bytes, max_shared_bytes,
// max_segments_per_publisher, max_message_size) with an error wrapping
// parallax.ErrLimit that names the limit. Allocation, reference counts and
// reclaim are the publisher's own business, in its process memory: when a
// subscriber dies the router tells its publishers, which take back what
// they delivered on its connections; when a publisher dies the router
// closes its fds of the publisher's segments, keeps a tombstone until the
// subscribers have let go, and the kernel frees the memory at the last
// unmap. The README's "Memory" section is the overview, its "Security"
// section the threat model (what each holder of an fd can still do), and
// docs/design/memory-ownership.md the design.
//
// One router serves a domain: [New] takes a flock on
// <runtime_dir>/<domain>.lock and holds it until [Server.Close]; a second
// router of the domain fails with an error wrapping
// discovery.ErrRouterRunning naming the live one (parallax-roudi exits
// with code 3). Only with that lock held does a router adopt a dead
// router's segments, and only from the fds the resuming clients hand back,
// each checked to be one it made (owner, mode 0600, seals, name, size,
// layout; a connection only when both ends present the same inode). Until
// the adopted clients resume or their grace period ends, they count as
// attached, and a client resumes only as the same process (pid and uid)
// with the token its Welcome carried (the core decides; the server keeps
// the records in <runtime_dir>/<domain>.clients, out of reach of clients).
// An adopting router hands out endpoint and connection ids above the
// highest its predecessor recorded in <runtime_dir>/<domain>.ids, so no id
// of an endpoint that died meanwhile is reused.
//
// The router knows each publisher's data segments but never reads memory
// a client can write, so how many chunks are in use is the publisher's own
// report (a memory report the client runtime sends about once a second
// while it changes): [Introspection].PublisherSegments, `parallax pools` and the
// parallax_publisher_* metrics show it as reported. The router takes
// reports only about the reporting client's own live publishers and no
// more chunks than it created for them, so a lying client can misstate
// its own use and nobody else's. The same reports carry the publishers'
// message counters: a topic's published, delivered and dropped counts
// ([TopicStat], `parallax topics`, parallax_topic_*_total) are the sum of
// its live publishers' reports and the last reports of those gone, and a
// report may not lower a counter, so they never go backwards. A closing
// publisher reports its final counters before it goes. Per connection the
// reports carry what the publisher delivered, dropped and got back
// ([ConnStat], `parallax connections`, parallax_connection_*_total),
// believed only from the connection's own publisher.
package roudi
