package mempool_test

import (
	"errors"
	"fmt"

	"github.com/parallax-ipc/parallax"
	"github.com/parallax-ipc/parallax/mempool"
)

// One side formats a pool's management area; another attaches to the same
// bytes (in a second process, through a shared mapping), loans a chunk,
// fills it and releases it.
func ExampleFormat() {
	c := mempool.Class{ChunkSize: 256, Count: 4}
	mgmt := mempool.HeapRegion(mempool.MgmtSize(c)) // a shared mapping, or heap memory in one process
	payload := mempool.HeapRegion(c.PayloadSize())  // likewise

	if _, err := mempool.Format(mgmt, 1, c); err != nil { // formatting side
		panic(err)
	}
	pool, err := mempool.Attach(mgmt, payload) // attaching side
	if err != nil {
		panic(err)
	}

	ref, _ := pool.Loan(42)
	buf, _ := pool.Payload(ref)
	n := copy(buf, "hello")
	_ = pool.SetMeta(ref, mempool.Meta{Length: uint64(n), Seq: 1})
	data, _ := pool.Data(ref)
	fmt.Printf("%v holds %q\n", ref, data)

	freed, _ := pool.Release(ref)
	_, err = pool.Release(ref) // a second release is refused
	fmt.Println("freed:", freed, "stale:", errors.Is(err, parallax.ErrStaleRef))
	fmt.Println("all free:", pool.Audit().AllFree())
	// Output:
	// ref(1/0@1) holds "hello"
	// freed: true stale: true
	// all free: true
}

// A Set routes each loan to the smallest size class that fits and refuses
// at once when that class is exhausted.
func ExampleSet_Loan() {
	var set mempool.Set
	for id, c := range []mempool.Class{{ChunkSize: 128, Count: 1}, {ChunkSize: 4096, Count: 2}} {
		p, err := mempool.Format(mempool.HeapRegion(mempool.MgmtSize(c)), uint16(id), c)
		if err != nil {
			panic(err)
		}
		if err := p.SetPayload(mempool.HeapRegion(c.PayloadSize())); err != nil {
			panic(err)
		}
		if err := set.Add(p); err != nil {
			panic(err)
		}
	}
	small, _ := set.Loan(100, 7)
	big, _ := set.Loan(1000, 7)
	_, err := set.Loan(100, 7)
	fmt.Println(small.Pool(), big.Pool(), errors.Is(err, parallax.ErrPoolExhausted))
	for _, s := range set.Stats() {
		fmt.Printf("%dB: in use %d, failed %d\n", s.ChunkSize, s.InUse, s.FailedLoans)
	}
	// Output:
	// 0 1 true
	// 128B: in use 1, failed 1
	// 4096B: in use 1, failed 0
}
