package ringbuf_test

import (
	"context"
	"fmt"

	"github.com/parallax-ipc/parallax"
	"github.com/parallax-ipc/parallax/ringbuf"
)

// A DiscardOldest ring of capacity 2 in an ordinary byte slice (in a real
// deployment, a region of the shared management segment). The third push
// reclaims the oldest ref and hands it back to the producer, who releases
// the chunk.
func Example() {
	mem := make([]byte, ringbuf.Size(2))
	r, err := ringbuf.Format(mem, 2, ringbuf.DiscardOldest)
	if err != nil {
		panic(err)
	}
	nt, err := ringbuf.FormatNotifier(make([]byte, ringbuf.NotifierSize))
	if err != nil {
		panic(err)
	}

	// Producer side (normally another process, using ringbuf.Attach).
	for slot := uint32(1); slot <= 3; slot++ {
		discarded, err := r.TryPush(parallax.MakeRef(0, slot, 1))
		if err != nil {
			panic(err)
		}
		if !discarded.IsNil() {
			fmt.Println("producer got back", discarded)
		}
		_ = nt.Notify() // no system call: nobody sleeps
	}

	// Consumer side: wait until a ring has entries, then drain it.
	ready := func() bool { return r.Len() > 0 }
	if err := nt.Wait(context.Background(), ready, ringbuf.WaitOptions{}); err != nil {
		panic(err)
	}
	for ref, err := r.TryPop(); err == nil; ref, err = r.TryPop() {
		fmt.Println("consumer popped", ref)
	}
	fmt.Println("dropped:", r.Dropped(), "wake syscalls:", nt.Stats().Wakes)
	// Output:
	// producer got back ref(0/1@1)
	// consumer popped ref(0/2@1)
	// consumer popped ref(0/3@1)
	// dropped: 1 wake syscalls: 0
}
