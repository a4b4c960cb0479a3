// Package gateway bridges chosen Parallax topics onto NATS
// (github.com/nats-io/nats.go), so that a pipeline can span machines
// without a home-made network protocol.
//
// A [Gateway] serves one Parallax domain. Each exported topic is subscribed
// locally (a subscriber.Subscriber) and every sample is published on the
// NATS subject <prefix><topic> (prefix "parallax." by default). Each
// imported topic is a NATS subscription on the same subject whose messages
// are published locally, on the same topic name, by a publisher.Publisher
// of the gateway. Two gateways in two domains, one exporting and one
// importing a topic, carry that topic from one domain to the other.
//
// # Message format
//
// Each NATS message starts with a compact binary header, then the payload
// (all of it, or one part of a split message), unchanged. No NATS headers
// are used: encoding is a few stores into a header built once per topic,
// decoding reads fixed offsets and allocates nothing. Version 1,
// little-endian:
//
//	offset size field
//	0      2    magic "PX"
//	2      1    version (1)
//	3      1    flags: bit 0 = part of a split message, bit 1 = batch
//	            (at most one); other bits 0
//	4      1    G, length of the exporting gateway's id (1..255)
//	5      1    T, length of the payload type name (0..255)
//	6      2    reserved, 0
//	8      8    origin sequence number
//	16     8    origin timestamp, unix nanoseconds
//	24     4    origin publisher id (in the exporting domain)
//	28     4    type size
//	32     4    type align
//	36     24   only for a part: total length (8), part index (4),
//	            part count (4), offset of the part in the message (8)
//	then   G    gateway id, then T type name, then the payload
//
// A batch carries several whole messages of one gateway and type: bytes
// 8..11 of its header hold the record count N (1..), bytes 12..27 are 0,
// and after the type name come N records, each the origin sequence (8),
// timestamp (8), publisher id (4), payload length L (4) and L payload
// bytes, filling the NATS message exactly. A batch is validated whole
// before any of its messages is published; a malformed one is refused
// (counted once per message it claims) and none of it is delivered.
//
// A receiver refuses a message whose magic, version, flags, reserved bytes
// or lengths are wrong, or whose part fields are inconsistent; a change of
// layout gets a new version. Programs other than gateways use
// [AppendMessage], [DecodeMessage] and [DecodeMessages] (which reads
// batches too); a non-Parallax consumer of a bridged subject skips 36+G+T
// bytes (60+G+T for a part) of a message that is not a batch. Gateways
// from before batches refuse them: give exporters [Options].Unbatched
// (-batch=false) until every importer reads them.
//
// The local publisher of an importing gateway assigns its own sequence
// numbers and timestamps; the origin's are only in the header. The
// importer uses them to count sequence gaps per origin ([Stats].Gaps:
// messages lost on the way, for example while NATS was unreachable).
//
// # Batching
//
// An exporter takes what its local queue holds (up to 256 samples or 256
// KiB) after each blocking take, copying each as a batch record into one
// reused staging buffer and releasing it at once; then it publishes the
// staged messages with nats.Conn.Publish as batches of up to 32 KiB, one
// NATS message each (a lone sample goes as a plain message; nats.go
// copies each into its buffer and its flusher writes what accumulated in
// one system call), and updates its counters once per batch. Nothing
// flushes per message. A batch saves all of NATS's per-message work but
// once: the client's lock, the server's routing, the receiving client's
// allocation and hand-off to the subscription's goroutine. Batches form
// only from what is already queued, so a paced stream goes out message by
// message with no added latency.
// Emptying the queue before publishing means a block-producer publisher
// waiting on the full queue is woken once per batch rather than once per
// freed slot. A sample that must be split, or is larger than 16 KiB, is
// published on its own (its chunk held meanwhile), after the messages
// staged before it. An importer
// copies each payload once, from its connection's read buffer into a chunk
// loaned from the local pool (see Imports); the samples of a batch are published locally together
// (publisher.PublishBatch, up to 64 at a time: one timestamp and one
// wake-up of each sleeping local subscriber per batch instead of per
// sample). It takes its lock and adds its counters once per NATS message.
// Under [PolicyBlock] an exporter's local subscriber wakes a blocked local
// publisher once it has drained half its queue (subscriber.Options
// DrainWakes), not at every take. Neither side allocates per message.
//
// # Imports
//
// Core-NATS imports do not go through nats.go, which copies every
// received message into a fresh allocation and hands it to a goroutine
// per subscription. A gateway with imports opens a second NATS connection
// of its own for them, subscribes each imported subject on it and reads
// the NATS protocol itself on one goroutine from one reused buffer (a
// message larger than the buffer grows it, up to the server's max
// payload): each message's payload goes from the buffer to the importer,
// which copies it into the loaned chunk, the only copy after the kernel's.
// Every length the server sends is checked against its max payload; a
// malformed frame closes the connection with a logged error naming what
// was wrong (counted in [Stats].Refused), and the connection comes back
// with the gateway's backoff, subscribing again. It speaks plain TCP with
// user/password or token authentication (from the URL or
// [Options].NATSOptions); for TLS, nkeys, JWT or creds files, token
// handlers, custom dialers, websocket, and for JetStream, and with
// [Options].ImportWithNATSGo, importers subscribe through nats.go as
// before (the reason is logged at debug level; a server that requires
// TLS makes the gateway fall back at run time). All imported topics share
// the reading goroutine.
//
// # Policies
//
// [PolicyDiscard] (the default) keeps local publishers at full speed and
// counts what the gateway loses; [PolicyBlock] (`-policy block`) makes the
// exporters' local queues block-producer, so a fast local publisher is
// slowed to NATS's pace, waits for NATS while it is unreachable, and makes
// importers wait for pool chunks. An importer on its own connection
// (see Imports) that waits stops reading it, and TCP backpressure slows
// the NATS server's writes; a server that gives up on it (slow consumer)
// closes the connection: the messages the server discarded show as gaps
// at the importer ([Stats].Gaps), and the reconnection is counted. Through
// nats.go, importers' NATS pending limits ([Options].PendingMsgs,
// PendingBytes) bound what nats.go holds for a slow importer; beyond them
// it drops (slow consumer), counted as dropped.
// Losses are counted per topic and direction ([Gateway.TopicStats]).
//
// # Types
//
// A topic may fix its payload type ([Topic].Type, or "topic:name,size,align"
// on the command line). An exporter subscribes with that type (untyped bytes
// when none is given), so it must match the local topic's publishers. An
// importer publishes with the configured type, or, when none is configured,
// with the type in the header of the first message it receives. A message
// whose type differs from the importer's, or whose local topic carries
// another type (publisher.New fails with parallax.ErrIncompatibleType), is
// refused: counted in [Stats].Refused and logged with both types.
//
// # Loop prevention
//
// A message imported from NATS is never exported back: an importer ignores
// messages whose header names its own gateway as their origin (and the
// NATS connection is opened with NoEcho), and an exporter skips every local
// sample whose publisher (subscriber.Header.PublisherID) is one of its own
// gateway's importing publishers. One gateway per domain and topic is
// assumed: two gateways bridging the same topic in and out of one domain
// would re-export each other's imports.
//
// # Large payloads
//
// A sample larger than the NATS server's maximum payload
// (nats.Conn.MaxPayload, 1 MiB by default) is split into parts that carry
// the total length, the part index and count and the part's offset; the
// importer reassembles them into one chunk loaned from its local pool and
// publishes it when the last part arrived. A message that lost a part (for
// example while NATS reconnected) is dropped and counted, never delivered
// partially. Reassembly is bounded: [Options].MaxMessageSize caps the
// total (checked before any loan), [Options].MaxPartial the messages in
// reassembly at once, and every header field is validated.
//
// # Persistence
//
// With [Options].Stream, exporters publish to a JetStream stream and
// importers consume with durable consumers, so an importing domain that
// was down receives what was published meanwhile (see jetstream.go).
//
// # Reconnection
//
// The NATS connection reconnects by itself (nats.go reconnect options,
// retried forever with exponential backoff, including the first connect);
// so does the import connection, with the same backoff, cycling through
// the URLs; a message cut by the disconnection is never delivered.
// Messages published while NATS is unreachable are buffered by nats.go up
// to its reconnect buffer, then dropped. When the router goes away (the
// process runtime's control connection ends, or endpoints cannot be
// created), the gateway closes its local endpoints and re-creates them with
// exponential backoff once a router serves the domain again. Every
// reconnection (NATS or router) is counted in [Stats].Reconnects.
//
// # Counters
//
// [Gateway.Stats] returns the counters; they are also logged every
// [Options].StatsInterval, served as Prometheus metrics by
// [Gateway.Collector] (parallax_gateway_*_total, `parallax gateway
// -metrics ADDR`), and reported to the router of the gateway's domain every
// [Options].ReportInterval (one second by default) and once when Run ends.
// The router lists the latest report in its introspection (`parallax
// gateways`) and its own metrics
// (parallax_component_counter_total{component="gateway",instance=<id>,...})
// for as long as the gateway's control connection lasts. A failed report is
// logged at debug level and never stops forwarding; after a router restart
// the next session reports again.
package gateway
