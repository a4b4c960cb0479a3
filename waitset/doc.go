// Package waitset waits on any mix of Parallax endpoints, timers and file
// descriptors at once and reports which fired: subscribers (a sample
// arrived), rpc servers (a request arrived), rpc clients (a response
// arrived), event listeners (ids fired), one-shot deadlines, periodic
// intervals and readable fds. Each is added with a user key; Wait returns
// the keys that fired in a slice reused across calls.
//
//	ws, _ := waitset.New(waitset.Options{})
//	defer ws.Close()
//	_ = ws.Add(sub, 1)        // *subscriber.Subscriber
//	_ = ws.Add(srv, 2)        // *rpc.Server
//	_ = ws.Add(lis, 3)        // *event.Listener
//	_ = ws.AddInterval(100*time.Millisecond, 4)
//	_ = ws.AddFd(fd, 5)
//	for {
//		keys, err := ws.Wait(ctx)
//		for _, k := range keys { ... sub.TryTake(), srv.Receive(ctx), lis.TryWait(), ... }
//	}
//
// Any endpoint kind joins by implementing [Source]: Ready (a cheap,
// lock-free check) and AppendNotifiers (the futex words its producers
// wake, with a generation that changes when they change). A source whose
// words can be unmapped while the set sleeps on them (owned-model
// connections) also implements [Guard], so the removal waits until the
// set left them. Because of that registration, a set waiting on a
// subscriber or rpc endpoint and that endpoint's own blocking call (Take,
// Receive, Stream.Next) must not wait at the same time: use the set, then
// the non-blocking (or already satisfied) call.
//
// # How Wait sleeps
//
// Wait first checks every source, fd flag and timer: when something is
// ready it returns at once, with no system call and no allocation. Else it
// spins briefly (Options.Spin), then announces sleep on every word (the
// ringbuf sleeping-flag protocol, so a producer makes the wake system call
// only while the set sleeps) and sleeps in one futex_waitv over the set's
// own process-local word plus every source's words. The nearest deadline
// or interval tick is the sleep's timeout. Each sleep is also cut at
// 10 ms: an owned-model subscriber's new connection brings a word the set
// does not sleep on yet, so the set looks again at least that often (an
// event listener wakes the set's sleep at once through its own local word).
//
// Fds are watched by one helper goroutine per set, started by the first
// AddFd, blocked in poll(2) only while the set sleeps. When an fd becomes
// readable it sets a flag and Notifies the set's local word. That costs
// one extra wake hop (kernel → helper goroutine → futex wake → waiter),
// some microseconds more than a shared-memory source. Fds are
// level-triggered: a readable fd is reported again by the next Wait that
// sleeps while it stays readable.
//
// # Past 128 words
//
// futex_waitv takes at most 128 words. A set whose sources have more
// (every owned-model connection has its own wake word, so a subscriber
// with many publishers counts many) still works, more slowly: it sleeps
// on its local word only, in 1 ms slices, checking every source between
// slices. So a sample on such a set is seen within about 1 ms (fds and
// Close still wake it at once), and an idle set wakes 1000 times a
// second. What exists today is only this slicing. The plan is a doorbell
// per consumer: a router-created eventfd (or one shared futex word) that
// every producer of the consumer rings in addition to the connection's
// word (docs/design/memory-ownership.md §9 Q1); the set would then sleep
// on one word per source whatever the number of connections. That needs a
// segment layout change and is not built.
package waitset
