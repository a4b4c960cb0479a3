package owner

import (
	"fmt"
	"testing"
)

// BenchmarkCycle measures one message's private accounting: Loan, Deliver
// on every connection, Published, and each connection's Return.
func BenchmarkCycle(b *testing.B) {
	for _, subs := range []int{1, 16} {
		b.Run(fmt.Sprintf("subs=%d", subs), func(b *testing.B) {
			tr, c := newTracker(b, Config{}, uint32(4+16*subs), subs, 16)
			b.ReportAllocs()
			for b.Loop() {
				idx, ref, err := tr.Loan(0)
				if err != nil {
					b.Fatal(err)
				}
				for _, x := range c {
					if err := tr.Deliver(x, idx); err != nil {
						b.Fatal(err)
					}
				}
				if err := tr.Published(idx); err != nil {
					b.Fatal(err)
				}
				for _, x := range c {
					if err := tr.Return(x, ref); err != nil {
						b.Fatal(err)
					}
				}
			}
		})
	}
}
