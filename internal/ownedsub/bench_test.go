package ownedsub_test

import (
	"fmt"
	"testing"

	"github.com/parallax-ipc/parallax/internal/ownedpub"
	"github.com/parallax-ipc/parallax/internal/ownedsub"
	"github.com/parallax-ipc/parallax/ringbuf"
)

// BenchmarkTakeRelease measures one message through both engines in one
// goroutine: Loan, Publish, TryTake, Release, over 1 or 16 connections
// (each message is taken from every connection). It must allocate nothing.
func BenchmarkTakeRelease(b *testing.B) {
	for _, conns := range []int{1, 16} {
		for _, single := range []bool{false, true} {
			b.Run(fmt.Sprintf("conns=%d/single=%v", conns, single), func(b *testing.B) {
				const dataCap, maxHeld = 64, 16
				bound := dataCap + maxHeld
				s := ownedsub.New(ownedsub.Options{SingleGoroutine: single})
				p := newPub(b, 1, ownedpub.Options{MaxLoans: 4, SingleGoroutine: single}, 64, uint32(4+conns*bound))
				for i := range conns {
					connect(b, p, s, uint32(i+1), ringbuf.BlockProducer, dataCap, maxHeld, 0)
				}
				var seq uint64
				b.ReportAllocs()
				for b.Loop() {
					seq++
					l, err := p.e.Loan(64)
					if err != nil {
						b.Fatal(err)
					}
					putSeq(l.Bytes(), seq)
					if err := p.e.Publish(&l); err != nil {
						b.Fatal(err)
					}
					for range conns {
						x, err := s.TryTake()
						if err != nil {
							b.Fatal(err)
						}
						if err := x.Release(); err != nil {
							b.Fatal(err)
						}
					}
				}
			})
		}
	}
}

func putSeq(b []byte, seq uint64) {
	for i := range 8 {
		b[i] = byte(seq >> (8 * i))
	}
}
