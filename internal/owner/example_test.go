package owner_test

import (
	"errors"
	"fmt"

	"github.com/parallax-ipc/parallax"
	"github.com/parallax-ipc/parallax/internal/owner"
)

// A publisher with one segment and two subscribers: it loans a chunk,
// delivers it on both connections, and the chunk is free again once both
// returned it. A second return of the same ref is refused; a dead
// subscriber's chunks come back with ReclaimConn.
func Example() {
	t := owner.New(owner.Config{MaxLoans: 4})
	class, _ := t.AddSegment(0, 64, 8)
	a, _ := t.AddConn(1, 4)
	b, _ := t.AddConn(2, 4)

	idx, ref, _ := t.Loan(class)
	_ = t.Deliver(a, idx)
	_ = t.Deliver(b, idx)
	_ = t.Published(idx)
	fmt.Println(ref, "in use:", t.Stats().InUse)

	_ = t.Return(a, ref)
	err := t.Return(a, ref) // a double return
	fmt.Println("refused:", errors.Is(err, parallax.ErrNotHeld))
	fmt.Println("reclaimed from b:", t.ReclaimConn(b), "in use:", t.Stats().InUse)
	// Output:
	// ref(0/0@1) in use: 1
	// refused: true
	// reclaimed from b: 1 in use: 0
}
