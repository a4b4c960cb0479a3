package ownedsub_test

import (
	"encoding/binary"
	"errors"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/parallax-ipc/parallax/internal/ownedpub"
	"github.com/parallax-ipc/parallax/internal/ownedsub"
	"github.com/parallax-ipc/parallax/ringbuf"
)

// FuzzTake writes fuzzed words into a connection's data ring — head and
// tail words and slots — and takes until the engine reports anything but a
// sample: it never panics, never loops, hands out only views inside the
// publisher's segment, and every error is one of the documented ones.
func FuzzTake(f *testing.F) {
	f.Add([]byte{}, uint64(0), uint64(3))
	f.Add(make([]byte, 64), uint64(1<<32), uint64(1<<33|5))
	f.Add([]byte{1, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff}, uint64(0), uint64(2))
	f.Fuzz(func(t *testing.T, slots []byte, head, tail uint64) {
		const dataCap, maxHeld = 8, 3
		s := ownedsub.New(ownedsub.Options{SingleGoroutine: true})
		p := newPub(t, 1, ownedpub.Options{MaxLoans: 1}, 64, 1+dataCap+maxHeld)
		l := connect(t, p, s, 1, ringbuf.DiscardOldest, dataCap, maxHeld, 0)
		for seq := uint64(1); seq <= 3; seq++ {
			require.NoError(t, p.publish(t, 64, seq))
		}
		ring := ringbuf.ConnHeaderSize + 2*ringbuf.NotifierSize
		binary.LittleEndian.PutUint64(l.mem[ring+128:], head)
		binary.LittleEndian.PutUint64(l.mem[ring+256:], tail)
		for i := 0; i+8 <= len(slots) && i < 8*dataCap; i += 8 {
			copy(l.mem[ring+ringbuf.HeaderSize+i:], slots[i:i+8])
		}
		var held []ownedsub.Sample
		for range 4 * dataCap {
			x, err := s.TryTake()
			if err == nil {
				b := x.Bytes()
				require.LessOrEqual(t, len(b), 64)
				held = append(held, x)
				continue
			}
			if errors.Is(err, ownedsub.ErrHeldLimit) && len(held) > 0 {
				_ = held[0].Release() // may fail the connection (a full return ring): an error, not a panic
				held = held[1:]
				continue
			}
			require.True(t, errors.Is(err, ownedsub.ErrEmpty) || errors.Is(err, ownedsub.ErrConnFailed) ||
				errors.Is(err, ownedsub.ErrPendingSegment) || errors.Is(err, ownedsub.ErrHeldLimit), "unexpected %v", err)
			if !errors.Is(err, ownedsub.ErrPendingSegment) {
				break
			}
		}
		for _, x := range held {
			_ = x.Release()
		}
		_, err := s.RemoveConn(l.sc)
		require.NoError(t, err)
	})
}
