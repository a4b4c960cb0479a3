package publisher

import (
	"errors"

	"github.com/parallax-ipc/parallax/internal/ownedpub"
	"github.com/parallax-ipc/parallax/internal/sys"
)

// PublishBatch publishes the chunks of cs in order, as that many calls of
// [Publisher.Publish] would, and gives up every loan whatever the result.
// Subscribers see the same samples, sequence numbers and order; what a
// batch saves is per-sample work of the publisher: the publisher's lock is
// taken once, the timestamp is read once (every sample of the batch
// carries it), and a sleeping subscriber is woken once per batch, after
// the last sample reached its queue, instead of once per sample (a futex
// system call each). A block-producer subscriber whose queue fills during
// the batch is woken before the publisher waits for it, as with Publish.
// Meant for bursts a program has in hand at once (a gateway importing a
// batch of network messages); the subscribers' latency for the first
// samples of a batch grows by the time the batch takes to publish.
//
// It returns how many chunks were published without error and the first
// error (each failure is what Publish would have returned for that chunk;
// the other chunks are published regardless). After Close it gives the
// chunks back and returns an error wrapping os.ErrClosed: 0 published, or
// those published before a Close that came while the batch waited on a
// full block-producer queue. An empty
// cs publishes nothing. The loans must be distinct current loans of p.
func (p *Publisher) PublishBatch(cs []Chunk) (published int, err error) {
	o := p.own.Load()
	now := sys.UnixNano()
	for i := range cs {
		cs[i].ol.SetStamp(now) // keeps what Chunk.SetMeta set
	}
	var first error
	var bad []*ownedpub.ConnError // reported after the batch: badConn takes o.mu
	o.eng.PublishBatch(len(cs), func(i int) *ownedpub.Loan { return &cs[i].ol }, func(i int, e error) {
		if e == nil {
			published++
			return
		}
		var ce *ownedpub.ConnError
		if errors.As(e, &ce) {
			bad = append(bad, ce)
		}
		if first == nil {
			first = p.publishError(nil, cs[i].Ref(), e)
		}
	})
	for _, ce := range bad {
		p.badConn(o, ce)
	}
	return published, first
}
