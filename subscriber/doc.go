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
// TryTake never blocks; Take sleeps on a futex (after an optional bounded
// spin, or busy-polls when asked) until a publisher notifies it or ctx ends.
// Taking and releasing allocate nothing and make no system call.
package subscriber
