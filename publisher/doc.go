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
// loans outstanding. The client runtime reports these counters to the
// router about once a second: `parallax topics`
// (and -json) shows them per publisher, and the router's metrics export
// them (parallax_publisher_unconnected_total and others).
//
// The publish path allocates nothing and makes a system call only when a
// subscriber sleeps (its futex is woken) or a block-producer subscriber's
// queue stays full past [Options.Spin] (the publisher sleeps on it, still
// without allocating, for up to [Options.BlockTimeout]). Its one guard is
// the publisher's own lock, taken once by Loan and once by Publish (an
// uncontended lock and unlock: no other process sees it), which also
// makes a Publisher safe for concurrent use.
//
// # Memory
//
// A publisher loans from data segments of its own (package dataseg),
// which the router creates and seals and which only its subscribers map,
// read-only; each subscriber returns the chunks it releases over its own
// connection segment (package ringbuf), and a subscriber that dies gives
// back everything it held at once. The publisher alone counts: its free
// list (last returned, first loaned, so chunks come back cache-hot), the
// fan-out of every chunk and, per connection, which chunks it delivered
// there and has not had back, all in its own process memory. A return is
// accepted only for a chunk delivered on that connection with that
// generation, so a buggy or hostile subscriber cannot free a chunk early.
// [Stats.Memory] is this accounting; the client runtime reports it to the
// router (`parallax pools`).
//
// The chunk size is TypeSize for a typed publisher, else
// [Options.MaxPayload], else the router's [publishers]
// default_max_payload (4 KiB), rounded up to 64 bytes. The router sizes a
// publisher's first segment so that loans within [Options.MaxLoans] never
// run out with honest subscribers:
//
//	chunks = MaxLoans + History + Σ over connections of bound
//	bound  = min(queue capacity + MaxHeld, max(2, connection_budget / chunk size))
//
// for the subscribers there plus [Options.ExpectedSubscribers] more at the
// default queue capacity (256) and MaxHeld (16): 276 chunks for one
// subscriber with the defaults, 36 KiB of segment at 64-byte chunks. The
// connection_budget (32 MiB by default) keeps large chunks affordable: with
// 8 MiB chunks a subscriber's bound is 4 whatever its queue capacity. The
// publisher never keeps more than bound chunks outstanding on a connection
// (queued, held or returned but not yet drained), so a queue deeper than
// the bound never exhausts it: a discard-oldest queue at its bound takes
// back its oldest entry (Stats.Dropped), a block-producer one makes Publish
// wait, up to [Options.BlockTimeout], for a return.
//
// [Options.History] keeps the newest History published chunks (they count
// in the formula above); a subscriber that joins and asks for history gets
// up to that many of them (no more than it asked for), oldest first,
// bounded by its connection's bound.
//
// When a Loan still finds no free chunk (MaxLoans 0, or loans held
// elsewhere in the process), the publisher asks the router for a growth
// segment of its class, and a Loan larger than MaxPayload (untyped
// publishers) gets a dedicated segment, which later loans of up to its
// size reuse and which is given back once it stayed free for
// [Options.RetireAfter] (default [DefaultRetireAfter]). Both count against
// the router's [limits] (max_publisher_bytes, max_shared_bytes,
// max_segments_per_publisher, max_message_size): a loan beyond them fails
// with an error wrapping parallax.ErrLimit that names the limit. A
// publisher that declared no payload size (untyped, MaxPayload 0) whose
// loans are far smaller than its class (the class at least 8× the loan
// rounded up to a power of two, at least 64 bytes) asks the router once per
// such size, in the background, for a segment of small chunks that later
// loans of up to that size use; it is retired like a dedicated one, and a
// refusal leaves the publisher on its class. A loan whose class is empty
// takes a chunk of a larger class that has one free before it grows or
// waits. [Publisher.LoanWait] instead waits, without polling (on the futex words
// of the connections' return rings), for a subscriber to return a chunk,
// and for another goroutine's loan when MaxLoans chunks are loaned; it
// grows only when no subscriber holds anything that could come back.
package publisher
