package publisher

import (
	"github.com/parallax-ipc/parallax"
)

// grow is the slow path of [Publisher.Loan] when the pools refused a loan
// of n bytes with cause: when the router's config allows growth, the
// router adds a pool to the exhausted size class (or, for a loan larger
// than every class, creates a dedicated segment whose one chunk it loans
// to this process) and the runtime maps it read-write. Subscribers map the
// new segment when they first meet a reference into it. Beyond the
// router's limits, or with growth disabled, the error wraps
// parallax.ErrPoolExhausted (or mempool.ErrTooLarge for an oversized loan
// with growth disabled). After a refusal the runtime does not ask again for
// a short while, so an exhausted Loan stays cheap.
func (p *Publisher) grow(n int, cause error) (parallax.ChunkRef, error) {
	return p.rt.Grow(p.pools, n, p.owner, cause)
}
