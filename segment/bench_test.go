package segment_test

import (
	"fmt"
	"testing"

	"github.com/parallax-ipc/parallax/hugepages"
	"github.com/parallax-ipc/parallax/internal/testutil"
	"github.com/parallax-ipc/parallax/segment"
)

func sizeName(n int) string {
	if n >= 1<<20 {
		return fmt.Sprintf("size=%dMiB", n>>20)
	}
	return fmt.Sprintf("size=%dKiB", n>>10)
}

// BenchmarkNewMemfd measures create + size + seal + prefaulted map + close.
func BenchmarkNewMemfd(b *testing.B) {
	for _, size := range []int{64 << 10, 1 << 20, 16 << 20} {
		b.Run(sizeName(size), func(b *testing.B) {
			b.ReportAllocs()
			b.SetBytes(int64(size))
			for b.Loop() {
				m, err := segment.NewMemfd("bench", size, segment.MemfdOptions{})
				if err != nil {
					b.Fatal(err)
				}
				m.Close()
			}
		})
	}
}

// BenchmarkNewHugepage is BenchmarkNewMemfd on 2 MiB pages.
func BenchmarkNewHugepage(b *testing.B) {
	for _, size := range []int{2 << 20, 16 << 20} {
		b.Run(sizeName(size), func(b *testing.B) {
			testutil.MustHaveHugepages(b, size/hugepages.Size2M)
			b.ReportAllocs()
			b.SetBytes(int64(size))
			for b.Loop() {
				m, err := segment.NewHugepage("bench", size, segment.HugepageOptions{Mode: hugepages.Huge2M, Require: true})
				if err != nil {
					b.Fatal(err)
				}
				m.Close()
			}
		})
	}
}

// BenchmarkOpenReadOnly measures what a subscriber pays per segment: reopen
// read-only, fstat and seal checks, map, close.
func BenchmarkOpenReadOnly(b *testing.B) {
	const size = 1 << 20
	m, err := segment.NewMemfd("bench", size, segment.MemfdOptions{})
	if err != nil {
		b.Fatal(err)
	}
	defer m.Close()
	b.ReportAllocs()
	for b.Loop() {
		ro, err := m.ReadOnlyFile()
		if err != nil {
			b.Fatal(err)
		}
		s, err := segment.Open(ro, segment.OpenOptions{ReadOnly: true, ExpectedSize: size, RequireSeals: true})
		if err != nil {
			b.Fatal(err)
		}
		s.Close()
	}
}
