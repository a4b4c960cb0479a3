// Package subscriber is the receiving side of Parallax topics. A
// [Subscriber] is connected by the router to every publisher of its topic,
// one connection segment per publisher; a [Sample] is a read-only view of
// the very bytes the publisher wrote, valid until [Sample.Release].
//
//	sub, err := subscriber.New(ctx, "frames", subscriber.Options{QueueCapacity: 64})
//	s, err := sub.Take(ctx)
//	use(s.Bytes(), s.Header().Seq)
//	s.Release()
//
// TryTake never blocks; Take sleeps on a futex (after a spin of
// [Options.Spin], 5 µs by default, or busy-polls when asked) until a
// publisher notifies it or ctx ends. Taking and releasing allocate nothing
// and make no system call, except a release's wake of a publisher that
// sleeps waiting for returns.
//
// Waiting modes trade latency, CPU and throughput: the default spins for
// [DefaultSpin] (a time, the same on every machine) and then sleeps; a
// negative [Options.Spin] sleeps at once; [Options.BusyPoll] never sleeps
// (lowest latency, one core); [Options.Coalesce] lets a subscriber that keeps up
// with a fast stream take it in batches, which multiplies the messages per
// second two publishing and subscribing cores can exchange (each look at
// an empty queue moves the publisher's cache lines to the subscriber's
// core) at the price of up to Coalesce of extra latency on that stream;
// by default a take that must wait right after one that found a sample
// pauses [DefaultStreamPause] (1 µs) first, which takes such streams in
// small batches without touching request/response latency.
// [Subscriber.WakeStats] counts the futex sleeps and wake-ups.
//
// # Memory
//
// Each publisher connection has a segment of its own (package ringbuf),
// shared with that publisher only and mapped read-write by the two of
// them: the data ring the publisher pushes 8-byte chunk refs into, the
// return ring the subscriber pushes them back through, and the futex words
// each side sleeps on. The publisher's data segments (package dataseg) are
// mapped read-only, once per process however many subscribers of the
// process read them: the kernel refuses any write, so a sample's bytes are
// exactly what the publisher wrote. A take checks every ref against the
// segments of the publisher of that connection (segment index, slot,
// generation not 0, length within the chunk) before it makes a view; a ref
// naming anything else is an error for that connection only, reported to
// the router, which cuts it. A ref into a segment not mapped yet (the
// publisher grew) waits until the router grants it.
//
// [Sample.Release] is one push of the ref into the connection's return
// ring, then a wake of the publisher only if it sleeps there; it allocates
// nothing and makes no other system call. Only the publisher
// counts references, in its own memory: releasing twice, or releasing a
// stale Sample, is an error here and nothing is pushed. [Options.MaxHeld]
// (default the router's [publishers] default_max_held, 16) bounds the
// samples taken from one publisher and not yet released: at the bound a
// take that finds only such publishers fails with an error wrapping
// parallax.ErrLimit and pops nothing. The publisher's segments are sized
// for the queue capacity plus MaxHeld (capped by the router's
// connection_budget), so holding samples never starves other subscribers.
//
// When a subscriber's process dies its publishers take back everything
// they delivered to it. When a publisher goes away, the subscriber keeps
// taking what is queued from it; releasing such samples gives nothing
// back (nothing counts them any more), and once its queue is empty and
// nothing of it is held the subscriber unmaps the publisher's segments,
// which the kernel frees at their last unmap.
package subscriber
