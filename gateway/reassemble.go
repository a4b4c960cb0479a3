package gateway

import (
	"fmt"
	"time"

	"github.com/parallax-ipc/parallax/publisher"
)

// Reassembly of split messages. An exporter publishes the parts of one
// message back to back, in order, on one connection, and NATS keeps their
// order, so an importer expects, per origin (gateway, publisher), exactly
// the next part of the message it is reassembling. The first part loans a
// chunk of the whole message's size from the local pool (after checking it
// against Options.MaxMessageSize); each part is copied to its offset; the
// last one publishes the chunk. Anything else drops the message being
// reassembled (counted, the chunk given back): a part missing (lost while
// NATS reconnected), a part of another message, a part that disagrees with
// the first on the total, count or offset. A partial message is never
// published. At most Options.MaxPartial messages are reassembled at once
// (the oldest is dropped for a new one), and one that has not progressed
// for partialTimeout is dropped when the next first part arrives.

// partialTimeout is how long a partial message may wait for its next part.
const partialTimeout = 30 * time.Second

// partial is a split message being reassembled.
type partial struct {
	gateway   string
	publisher uint32
	seq       uint64
	total     uint64
	count     uint32
	next      uint32 // index of the expected part
	offset    uint64 // where it goes
	chunk     publisher.Chunk
	touched   time.Time
}

// reassembly is an importer's set of partial messages (guarded by the
// importer's mu). It is small (Options.MaxPartial), so it is a slice.
type reassembly struct {
	list []*partial
}

// find returns the index of origin's partial message, or -1.
func (r *reassembly) find(gateway []byte, pub uint32) int {
	for k, p := range r.list {
		if p.publisher == pub && p.gateway == string(gateway) {
			return k
		}
	}
	return -1
}

// remove gives back the chunk of partial k and forgets it.
func (r *reassembly) remove(pub *publisher.Publisher, k int) {
	if err := pub.Release(r.list[k].chunk); err != nil {
		_ = err // the publisher is closing; its chunks go back with it
	}
	r.list = append(r.list[:k], r.list[k+1:]...)
}

// clear drops every partial message and returns how many there were.
func (r *reassembly) clear(pub *publisher.Publisher) uint64 {
	n := uint64(len(r.list))
	for len(r.list) > 0 {
		r.remove(pub, len(r.list)-1)
	}
	return n
}

// addPart handles one part of a split message (f validated by parseFrame,
// its type already checked). The caller holds mu and has a publisher.
func (i *importer) addPart(f *frame) {
	r := &i.parts
	now := time.Now()
	k := r.find(f.gateway, f.publisher)
	if k >= 0 {
		p := r.list[k]
		if f.seq == p.seq && f.part == p.next && f.count == p.count && f.total == p.total && f.offset == p.offset {
			i.fill(k, f, now)
			return
		}
		r.remove(i.pub, k)
		i.drop(fmt.Errorf("import %q: split message %d from gateway %s publisher %d: expected part %d of %d at offset %d, got part %d of message %d: parts lost",
			i.topic.Name, p.seq, p.gateway, p.publisher, p.next, p.count, p.offset, f.part, f.seq), 1)
	}
	if f.part != 0 {
		return // the rest of a dropped (or never started) message: its loss is counted
	}
	if f.total > uint64(i.g.opts.MaxMessageSize) {
		i.refuse(fmt.Errorf("import %q: split message of %d bytes from gateway %s exceeds the max message size of %d bytes: %w",
			i.topic.Name, f.total, f.gateway, i.g.opts.MaxMessageSize, ErrPayloadTooLarge), 1)
		return
	}
	for k := 0; k < len(r.list); {
		if now.Sub(r.list[k].touched) > partialTimeout {
			p := r.list[k]
			r.remove(i.pub, k)
			i.drop(fmt.Errorf("import %q: split message %d from gateway %s: no part for %v: parts lost", i.topic.Name, p.seq, p.gateway, partialTimeout), 1)
			continue
		}
		k++
	}
	if len(r.list) >= i.g.opts.MaxPartial {
		p := r.list[0]
		r.remove(i.pub, 0)
		i.drop(fmt.Errorf("import %q: split message %d from gateway %s dropped: more than %d split messages in flight",
			i.topic.Name, p.seq, p.gateway, i.g.opts.MaxPartial), 1)
	}
	c, err := i.loan(int(f.total))
	if err != nil {
		i.drop(err, 1)
		return
	}
	r.list = append(r.list, &partial{gateway: string(f.gateway), publisher: f.publisher, seq: f.seq,
		total: f.total, count: f.count, chunk: c})
	i.fill(len(r.list)-1, f, now)
}

// fill copies part f into partial k and publishes the message when it is
// complete.
func (i *importer) fill(k int, f *frame, now time.Time) {
	p := i.parts.list[k]
	copy(p.chunk.Bytes()[p.offset:], f.payload)
	p.offset += uint64(len(f.payload))
	p.next++
	p.touched = now
	if p.next < p.count {
		return
	}
	// parseFrame checked that the last part ends at the total.
	i.parts.list = append(i.parts.list[:k], i.parts.list[k+1:]...)
	if i.publish(p.chunk) {
		i.c.forwarded.Add(1)
	}
}
