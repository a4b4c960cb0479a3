package publisher

// Stats are a publisher's counters, kept in this process. Read with
// [Publisher.Stats]; each counter is read on its own, so a snapshot taken
// while publishing may be off by the publish in progress.
type Stats struct {
	// Published counts the samples published (Publish and Send calls that
	// got as far as delivering).
	Published uint64
	// Delivered counts the samples pushed into subscribers' queues, summed
	// over connections: a sample published to three subscribers counts 3.
	Delivered uint64
	// Dropped counts the samples subscribers missed because of this
	// publisher: the oldest queued samples it overwrote (discard-oldest)
	// and the publishes that gave up on a full block-producer queue after
	// BlockTimeout, as [Publisher.Dropped] returns.
	Dropped uint64
	// Unconnected counts the samples published while no subscriber was
	// connected: nobody received them (unless History kept them for a
	// subscriber that joins later and asks for history). See the package
	// documentation for how to avoid losing them.
	Unconnected uint64
	// Loans counts the chunks loaned and not yet published or released.
	Loans int64
	// CorruptConnections counts the connections dropped because they
	// failed, as [Publisher.CorruptConnections] returns.
	CorruptConnections uint64
	// Removed counts the connections that ended: their subscriber closed,
	// died or was cut by the router. A Publish waiting on a
	// block-producer subscriber that goes away returns without error; what
	// that subscriber missed is not counted in Dropped.
	Removed uint64
	// Subscribers is the number of subscribers connected now.
	Subscribers int
	// Memory is the accounting of this publisher's own data segments.
	Memory MemoryStats
}

// MemoryStats is a publisher's accounting of its own chunks, kept in this
// process (the router knows sizes, not use).
type MemoryStats struct {
	Segments    int    // data segments
	Chunks      int    // chunks in all of them
	Free        int    // chunks free for loans
	InUse       int    // chunks loaned, in history or delivered and not yet returned (Chunks - Free)
	Loans       int    // chunks loaned and not yet published or released
	History     int    // chunks kept for late joiners
	Outstanding int    // chunks delivered to subscribers and not yet returned
	HighWater   int    // largest InUse so far
	Reclaimed   uint64 // chunks taken back from removed connections (dead or cut subscribers)
	BadReturns  uint64 // refs subscribers returned that they were never given (their connection failed)
	Grown       uint64 // data segments the router added on this publisher's request (growth, dedicated and undersized)
	Retired     uint64 // dedicated segments given back after RetireAfter free
}

// Stats returns the publisher's counters. It is safe to call from any
// goroutine, concurrently with publishing, and allocates nothing. It first
// takes back what subscribers returned, so
// Memory.Free counts every chunk no subscriber holds any more.
func (p *Publisher) Stats() Stats {
	s := Stats{CorruptConnections: p.corruptConns.Load()}
	p.own.Load().stats(&s)
	return s
}
