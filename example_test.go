package parallax_test

import (
	"errors"
	"fmt"

	"github.com/parallax-ipc/parallax"
)

// A ChunkRef packs pool, slot and generation into the 8 bytes that travel
// through the rings.
func ExampleChunkRef() {
	ref := parallax.MakeRef(2, 1000, 7)
	fmt.Println(ref, ref.Pool(), ref.Slot(), ref.Gen())
	fmt.Println(parallax.NilRef.IsNil(), parallax.NextGen(parallax.GenMask))
	// Output:
	// ref(2/1000@7) 2 1000 7
	// true 1
}

// Errors from every layer wrap the root sentinels, also after the trip over
// the control socket.
func ExampleErrPoolExhausted() {
	err := fmt.Errorf("loan 4096 bytes on %q: %w", "frames", parallax.ErrPoolExhausted)
	fmt.Println(errors.Is(err, parallax.ErrPoolExhausted))
	// Output: true
}
