package publisher

// LoanShared is [Publisher.Loan] with a stronger contract: it may be called
// from any goroutine, concurrently with Publish, Release, Send and other
// LoanShared calls on the same publisher. Pipeline allocators use it: an
// upstream element loans from its goroutine while the sink publishes from
// another. The publisher's engine is safe for concurrent use, so this
// costs nothing over Loan.
func (p *Publisher) LoanShared(n int) (Chunk, error) { return p.Loan(n) }

// ReleaseShared is [Publisher.Release] callable from any goroutine,
// concurrently with the other methods, like [Publisher.LoanShared].
func (p *Publisher) ReleaseShared(c Chunk) error { return p.Release(c) }
