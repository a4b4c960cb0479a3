package ringbuf_test

import (
	"context"
	"errors"
	"testing"

	"github.com/parallax-ipc/parallax"
	"github.com/parallax-ipc/parallax/ringbuf"
)

// FuzzAttach feeds arbitrary regions to Attach and AttachNotifier and, when
// they are accepted, runs operations on them: a corrupt header or state
// must produce errors, never a panic or an out-of-range access.
func FuzzAttach(f *testing.F) {
	for _, c := range []struct {
		capacity int
		policy   ringbuf.Policy
	}{{1, ringbuf.DiscardOldest}, {4, ringbuf.BlockProducer}, {16, ringbuf.DiscardOldest}} {
		mem := make([]byte, ringbuf.Size(c.capacity))
		if _, err := ringbuf.Format(mem, c.capacity, c.policy); err != nil {
			f.Fatal(err)
		}
		f.Add(mem)
	}
	nmem := make([]byte, ringbuf.NotifierSize)
	if _, err := ringbuf.FormatNotifier(nmem); err != nil {
		f.Fatal(err)
	}
	f.Add(nmem)
	f.Add([]byte{})
	f.Fuzz(func(t *testing.T, data []byte) {
		// Copy into an 8-byte aligned buffer (the fuzzer's slice may not
		// be), and try the unaligned view too.
		words := make([]uint64, (len(data)+15)/8)
		mem := ringbuf.BytesOf(words)[:len(data)]
		copy(mem, data)
		if len(mem) > 1 {
			if _, err := ringbuf.Attach(mem[1:]); err == nil {
				t.Fatal("Attach accepted an unaligned region")
			}
		}
		if n, err := ringbuf.AttachNotifier(mem); err == nil {
			_ = n.Notify()
			_ = n.Stats()
			_ = n.Wait(context.Background(), func() bool { return true }, ringbuf.WaitOptions{})
		}
		r, err := ringbuf.Attach(mem)
		if err != nil {
			return
		}
		_ = r.Len()
		for i := range 2*r.Cap() + 2 {
			if _, err := r.TryPush(parallax.ChunkRef(i + 1)); err != nil {
				break
			}
		}
		for range 2*r.Cap() + 2 {
			if _, err := r.TryPop(); err != nil {
				if err != ringbuf.ErrEmpty && !errors.Is(err, ringbuf.ErrCorruptRing) {
					t.Fatalf("pop: unexpected error %v", err)
				}
				break
			}
		}
		if l := r.Len(); l < 0 || l > r.Cap() {
			t.Fatalf("Len %d outside [0, %d]", l, r.Cap())
		}
	})
}
