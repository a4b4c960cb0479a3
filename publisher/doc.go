// Package publisher is the sending side of Parallax topics. A [Publisher]
// loans a chunk straight from its own shared-memory data segment, the caller
// writes the payload in place, and [Publisher.Publish] hands an 8-byte
// reference to every subscriber's ring: payload bytes are never copied.
//
//	pub, err := publisher.New(ctx, "frames", publisher.Options{TypeName: "raw", TypeSize: 0})
//	c, err := pub.Loan(4096)
//	fill(c.Bytes())
//	err = pub.Publish(c)
//
// [Publisher.Send] is the copying convenience beside the zero-copy path, and
// [Typed] publishes fixed-layout Go values. [Publisher.PublishBatch]
// publishes several loaned chunks at once: the same samples, with one
// timestamp and one wake-up of each sleeping subscriber for the batch.
//
// Samples published while no subscriber is connected reach nobody (a
// subscriber's connection takes a round trip through the router after its
// New returns). Call [Publisher.WaitForSubscribers] before publishing what
// must not be lost, create the publisher only once a subscriber exists
// (services.WaitForSubscriber; New waits for the connections to the
// subscribers that exist), or keep [Options.History] samples for
// subscribers that join later and ask for history. [Publisher.Stats]
// counts what happened: Published, Delivered (per subscriber),
// Unconnected (published to nobody), Dropped, Removed connections and the
// loans outstanding. In the owned memory model the client runtime reports
// these counters to the router about once a second: `parallax topics`
// (and -json) shows them per publisher, and the router's metrics export
// them (parallax_publisher_unconnected_total and others).
//
// The publish path allocates nothing, takes no lock and makes a system call
// only when a subscriber sleeps (its futex is woken) or a block-producer
// subscriber's queue stays full past [Options.Spin] (the publisher sleeps
// on it, still without allocating, for up to [Options.BlockTimeout]).
//
// # Memory
//
// A publisher loans from data segments of its own, which only its
// subscribers map, read-only; each subscriber returns the chunks it
// releases over its own connection, and a subscriber that dies gives back
// everything it held at once. [Options.MaxPayload], [Options.MaxLoans] and
// [Options.ExpectedSubscribers] size those segments; [Stats.Memory] is the
// publisher's own accounting of them.
//
// The router sizes a publisher's first segment so that loans within
// MaxLoans never run out with honest subscribers: chunks = MaxLoans +
// History + Σ over subscribers of bound, where a subscriber's bound is its
// queue capacity plus its MaxHeld, capped by the router's
// [publishers] connection_budget divided by the chunk size (so a
// subscriber of 8 MiB chunks has an effective queue of a few entries, not
// its capacity). A queue deeper than the bound does not exhaust the
// publisher: a discard-oldest queue at its bound gives back its oldest
// entry, a block-producer one makes Publish wait for a return.
//
// When a Loan still finds no free chunk (MaxLoans 0, or loans held
// elsewhere in the process), the publisher asks the router for a growth
// segment of its class, and a Loan larger than MaxPayload gets a
// dedicated segment, which later loans of up to its size reuse and which is
// given back once it stayed free for [Options.RetireAfter] (default
// [DefaultRetireAfter]). Both count against the router's [limits]
// (max_publisher_bytes, max_shared_bytes, max_segments_per_publisher,
// max_message_size): a loan beyond them fails with an error wrapping
// parallax.ErrLimit that names the limit. [Publisher.LoanWait] instead
// waits, without polling, for a subscriber to return a chunk.
package publisher
