package gateway

import "fmt"

// maxStaged bounds the chunks an importer loans for one local batch
// publish: a larger NATS batch goes out in several.
const maxStaged = 64

// stage copies payload, a record of a NATS batch, into a loaned chunk kept
// for the next flush; a loan that fails is logged and counted as dropped.
// When a loan fails (the pool is exhausted) it first publishes what is
// staged, which may be what the pool waits for, then loans as loan does
// (waiting under PolicyBlock). The
// caller holds mu and has a publisher.
func (i *importer) stage(payload []byte) {
	if len(i.staged) == maxStaged {
		i.flush()
	}
	c, err := i.pub.Loan(len(payload))
	if err != nil {
		i.flush()
		c, err = i.loan(len(payload))
	}
	if err != nil {
		i.drop(err, 1)
		return
	}
	copy(c.Bytes(), payload)
	i.staged = append(i.staged, c)
}

// flush publishes the staged chunks locally with one
// publisher.PublishBatch (one wake-up of each sleeping subscriber, one
// timestamp) and counts them forwarded, or dropped for those that failed
// (a block-producer subscriber's timeout: it missed them, the others have
// them). The caller holds mu.
func (i *importer) flush() {
	if len(i.staged) == 0 {
		return
	}
	n, err := i.pub.PublishBatch(i.staged)
	if err != nil {
		i.drop(fmt.Errorf("import %q: publish %d messages locally: %w", i.topic.Name, len(i.staged), err), uint64(len(i.staged)-n))
	}
	i.c.forwarded.Add(uint64(n))
	clear(i.staged) // no stale loans kept
	i.staged = i.staged[:0]
}
