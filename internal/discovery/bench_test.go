package discovery

import (
	"context"
	"os"
	"testing"

	"github.com/parallax-ipc/parallax/internal/wire"
)

// BenchmarkRequest measures one control round trip through a Client and a
// fake router over a real unixpacket socket.
func BenchmarkRequest(b *testing.B) {
	for _, fds := range []int{0, 1} {
		b.Run("fds="+[]string{"0", "1"}[fds], func(b *testing.B) {
			seg, err := os.CreateTemp(b.TempDir(), "seg")
			if err != nil {
				b.Fatal(err)
			}
			defer seg.Close()
			r := startRouterB(b, echoHandler(seg))
			c, err := Dial(context.Background(), DialOptions{Socket: r.path})
			if err != nil {
				b.Fatal(err)
			}
			defer c.Close()
			var req wire.Message = &wire.Ping{}
			if fds == 1 {
				req = grow
			}
			ctx := context.Background()
			b.ReportAllocs()
			for b.Loop() {
				_, files, err := c.Request(ctx, req, nil)
				if err != nil {
					b.Fatal(err)
				}
				closeFiles(files)
			}
		})
	}
}
