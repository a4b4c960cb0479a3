// Package pipeline is Parallax's streaming layer: elements joined into a
// graph of named nodes, run by an executor with one goroutine per node and
// one bounded channel per link.
//
// # Elements
//
// An element is a [Source] (produces buffers until io.EOF), a [Transform]
// (passes, replaces or drops each buffer), a [Sink] (consumes) or a [Runner]
// (drives any number of input and output [Pads] itself: tee, funnel, queue).
// Optional interfaces add a life cycle ([Starter], io.Closer), pad counts
// ([PadDeclarer]), pad types ([TypeDeclarer]) and allocation negotiation.
// Ownership of a [buffer.Buffer] moves with it: whoever receives one
// releases it or hands it on.
//
// # Allocation negotiation
//
// Like GStreamer's ALLOCATION query: before any buffer flows, each node's
// output allocator is the first [AllocatorProvider] found downstream,
// looking through elements that forward allocation ([AllocationForwarder]:
// identity, queue, tee, ...); else the pipeline's default, a [buffer.Pool]
// reused without allocating. An IPC sink provides chunks of its publisher's
// shared pool, so upstream writes straight into shared memory. Nodes learn
// their allocator through [AllocatorUser] or [Pads.Allocator].
//
// # Registry and launch lines
//
// A [Registry] ([Default] holds the built-ins of package pipeline/elements
// and plugins) maps element names to [Factory] values with descriptions and
// typed properties (int, float, bool, string, enum, byte sizes such as 64KiB,
// durations). [Launch] builds a graph from a gst-launch-like line:
//
//	testsrc num-buffers=1000 size=4KiB ! tee name=t  t. ! queue ! fakesink  t. ! fakesink
//
// Errors carry the column and a hint (closest element or property name).
//
// # Running
//
// [New] validates a [Graph] (cycles, pad counts, types; errors name the
// nodes) and returns a [Pipeline]: Start, Wait, Stop, State, Stats. Links are
// bounded (backpressure); end of stream propagates by closing channels; the
// first error stops everything and is returned as a [*NodeError] naming the
// node; cancelling Start's context stops it too. Events (started, state
// changes, EOS, errors, progress, node started/finished, custom) go to any
// number of [Listener]s without ever blocking the data path: a full listener
// loses events and counts them.
//
// Typed pipelines of Go values live in package pipeline/typed and run on the
// same executor.
//
// In steady state the data path allocates nothing, takes no lock besides
// the channels' and counts statistics in batches.
package pipeline
