package buffer_test

import (
	"context"
	"testing"

	"github.com/parallax-ipc/parallax/buffer"
)

func BenchmarkPoolAllocRelease(b *testing.B) {
	for _, size := range []int{64, 4096} {
		b.Run("size="+itoa(size), func(b *testing.B) {
			p := newPool(b, buffer.PoolOptions{})
			ctx := context.Background()
			b.ReportAllocs()
			for b.Loop() {
				buf, err := p.Alloc(ctx, size)
				if err != nil {
					b.Fatal(err)
				}
				buf.Release()
			}
		})
	}
}

func BenchmarkClone(b *testing.B) {
	buf := buffer.New(make([]byte, 64))
	defer buf.Release()
	b.ReportAllocs()
	for b.Loop() {
		buf.Clone().Release()
	}
}

func itoa(n int) string {
	if n == 0 {
		return "0"
	}
	var d []byte
	for ; n > 0; n /= 10 {
		d = append([]byte{byte('0' + n%10)}, d...)
	}
	return string(d)
}
