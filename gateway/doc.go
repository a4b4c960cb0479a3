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
// # Headers
//
// Each NATS message carries the sample's Parallax header in NATS headers:
//
//	Parallax-Seq        origin publisher's sequence number (decimal)
//	Parallax-Timestamp  origin publish time, unix nanoseconds (decimal)
//	Parallax-Type       payload type as name/size/align ("/0/0" = untyped bytes)
//	Parallax-Publisher  origin publisher id in the exporting domain (decimal)
//	Parallax-Gateway    id of the exporting gateway
//
// The payload is the sample's bytes, unchanged. The local publisher of an
// importing gateway assigns its own sequence numbers and timestamps; the
// origin's are only in the NATS headers. The importer uses them to count
// sequence gaps per origin ([Stats].Gaps: samples lost on the way, for
// example while NATS was unreachable).
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
// messages whose Parallax-Gateway header is its own gateway's id (and the
// NATS connection is opened with NoEcho), and an exporter skips every local
// sample whose publisher (subscriber.Header.PublisherID) is one of its own
// gateway's importing publishers. One gateway per domain and topic is
// assumed: two gateways bridging the same topic in and out of one domain
// would re-export each other's imports.
//
// # Large payloads
//
// Payloads are not chunked. A sample whose payload plus headers exceed the
// NATS server's maximum payload (nats.Conn.MaxPayload, 1 MiB by default) is
// refused with an error naming both sizes, counted in [Stats].Refused, and
// the flow continues with the next sample. Raise max_payload on the NATS
// servers to bridge larger samples. On the importing side a message larger
// than the router's largest chunk fails to loan and is counted as dropped.
//
// # Reconnection
//
// The NATS connection reconnects by itself (nats.go reconnect options,
// retried forever with exponential backoff, including the first connect).
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
