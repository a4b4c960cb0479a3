package ownedpub_test

import (
	"fmt"
	"testing"

	"github.com/parallax-ipc/parallax/internal/ownedpub"
	"github.com/parallax-ipc/parallax/ringbuf"
)

// BenchmarkPublish measures one message through the engine in one
// goroutine: Loan, write 8 bytes, Publish to every connection, and each
// connection's consumer popping and returning it (the engine drains the
// returns when it needs to). It must allocate nothing.
func BenchmarkPublish(b *testing.B) {
	for _, subs := range []int{1, 16} {
		for _, policy := range []ringbuf.Policy{ringbuf.DiscardOldest, ringbuf.BlockProducer} {
			for _, single := range []bool{false, true} {
				b.Run(fmt.Sprintf("subs=%d/policy=%v/single=%v", subs, policy, single), func(b *testing.B) {
					const dataCap, bound = 64, 65
					r := newRig(b, ownedpub.Options{MaxLoans: 4, SingleGoroutine: single}, 64, uint32(4+subs*bound))
					cons := make([]*consumer, subs)
					for i := range cons {
						_, cons[i] = r.conn(b, uint32(i+1), policy, dataCap, bound, 0)
					}
					var seq uint64
					b.ReportAllocs()
					for b.Loop() {
						seq++
						l, err := r.e.Loan(64)
						if err != nil {
							b.Fatal(err)
						}
						putSeq(l.Bytes(), seq)
						if err := r.e.Publish(&l); err != nil {
							b.Fatal(err)
						}
						for _, s := range cons {
							ref, err := s.c.DataRing().TryPop()
							if err != nil {
								b.Fatal(err)
							}
							if _, err := s.c.ReturnRing().TryPush(ref); err != nil {
								b.Fatal(err)
							}
						}
					}
				})
			}
		}
	}
}
