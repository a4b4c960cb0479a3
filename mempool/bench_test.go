package mempool

import (
	"fmt"
	"testing"
)

// BenchmarkLoanRelease measures one Loan plus one Release on an idle pool.
func BenchmarkLoanRelease(b *testing.B) {
	for _, count := range []uint32{64, 4096} {
		b.Run(fmt.Sprintf("count=%d", count), func(b *testing.B) {
			p := newPool(b, 1, Class{ChunkSize: 64, Count: count})
			b.ReportAllocs()
			for b.Loop() {
				r, err := p.Loan(1)
				if err != nil {
					b.Fatal(err)
				}
				if _, err := p.Release(r); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// BenchmarkLoanReleaseHeld measures Loan+Release with half the pool held,
// so the scan starts in a partly used bitmap.
func BenchmarkLoanReleaseHeld(b *testing.B) {
	const count = 4096
	p := newPool(b, 1, Class{ChunkSize: 64, Count: count})
	for range count / 2 {
		if _, err := p.Loan(1); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportAllocs()
	for b.Loop() {
		r, err := p.Loan(1)
		if err != nil {
			b.Fatal(err)
		}
		if _, err := p.Release(r); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkLoanReleaseParallel runs Loan+Release from GOMAXPROCS goroutines
// on one shared pool (contention on the bitmap and statistics lines).
func BenchmarkLoanReleaseParallel(b *testing.B) {
	p := newPool(b, 1, Class{ChunkSize: 64, Count: 4096})
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			r, err := p.Loan(1)
			if err != nil {
				b.Error(err)
				return
			}
			if _, err := p.Release(r); err != nil {
				b.Error(err)
				return
			}
		}
	})
}

// BenchmarkAddRefRelease measures one AddRef plus one non-final Release.
func BenchmarkAddRefRelease(b *testing.B) {
	p := newPool(b, 1, Class{ChunkSize: 64, Count: 64})
	r, err := p.Loan(1)
	if err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	for b.Loop() {
		if err := p.AddRef(r, 1); err != nil {
			b.Fatal(err)
		}
		if _, err := p.Release(r); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkLoanExhausted measures the refusal path (must not allocate).
func BenchmarkLoanExhausted(b *testing.B) {
	p := newPool(b, 1, Class{ChunkSize: 64, Count: 64})
	for range 64 {
		if _, err := p.Loan(1); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportAllocs()
	for b.Loop() {
		if _, err := p.Loan(1); err == nil {
			b.Fatal("loan from a full pool succeeded")
		}
	}
}

// BenchmarkSetLoanRelease measures Set.Loan (class selection) + Set.Release.
func BenchmarkSetLoanRelease(b *testing.B) {
	var s Set
	for i, size := range []uint32{128, 1024, 4096, 65536} {
		if err := s.Add(newPool(b, uint16(i), Class{ChunkSize: size, Count: 16})); err != nil {
			b.Fatal(err)
		}
	}
	for _, n := range []int{64, 4000} {
		b.Run(fmt.Sprintf("size=%d", n), func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				r, err := s.Loan(n, 1)
				if err != nil {
					b.Fatal(err)
				}
				if _, err := s.Release(r); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
