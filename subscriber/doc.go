// Package subscriber is the receiving side of Parallax topics. A
// [Subscriber] is connected by the router to every publisher of its topic,
// one lock-free ring per publisher in shared memory; a [Sample] is a
// read-only view of the very bytes the publisher wrote, valid until
// [Sample.Release].
//
//	sub, err := subscriber.New(ctx, "frames", subscriber.Options{QueueCapacity: 64})
//	s, err := sub.Take(ctx)
//	use(s.Bytes(), s.Header().Seq)
//	s.Release()
//
// TryTake never blocks; Take sleeps on a futex (after a spin of
// [Options.Spin], 5 µs by default, or busy-polls when asked) until a
// publisher notifies it or ctx ends. Taking and releasing allocate nothing
// and make no system call.
//
// Waiting modes trade latency, CPU and throughput: the default spins for
// [DefaultSpin] (a time, the same on every machine) and then sleeps; a
// negative [Options.Spin] sleeps at once; [Options.BusyPoll] never sleeps
// (lowest latency, one core); [Options.Coalesce] lets a subscriber that keeps up
// with a fast stream take it in batches, which multiplies the messages per
// second two publishing and subscribing cores can exchange (each look at
// an empty queue moves the publisher's cache lines to the subscriber's
// core) at the price of up to Coalesce of extra latency on that stream.
// [Subscriber.WakeStats] counts the futex sleeps and wake-ups.
//
// Each publisher connection has a segment of its own, shared with that
// publisher only: the subscriber sleeps on its connections' futex
// words, reads samples from the publisher's data segments mapped
// read-only, and a release returns the chunk to its publisher over the
// connection. [Options.MaxHeld] bounds the samples held per publisher.
package subscriber
