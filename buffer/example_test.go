package buffer_test

import (
	"context"
	"fmt"

	"github.com/parallax-ipc/parallax/buffer"
)

// A pool allocator hands out buffers in a heap segment; clones share the
// bytes and the chunk returns to the pool when the last one is released.
func ExamplePool() {
	pool, err := buffer.NewPool(buffer.PoolOptions{})
	if err != nil {
		panic(err)
	}
	defer pool.Close()

	b, _ := pool.Alloc(context.Background(), 5)
	copy(b.Bytes(), "hello")
	b.Meta.Seq = 1

	c := b.Clone() // O(1): no byte copied
	fmt.Printf("%s %s shared=%v writable=%v\n", b.Bytes(), c.Bytes(), &b.Bytes()[0] == &c.Bytes()[0], b.Writable())
	b.Release()
	fmt.Println("in use after one release:", pool.Stats().InUse)
	c.Release()
	fmt.Println("in use after both:", pool.Stats().InUse)
	// Output:
	// hello hello shared=true writable=false
	// in use after one release: 1
	// in use after both: 0
}

// Fixed-layout values are views of the buffer's bytes.
func ExampleView() {
	type sample struct {
		Seq   uint64
		Value float64
	}
	pool, _ := buffer.NewPool(buffer.PoolOptions{})
	defer pool.Close()
	b, s, _ := buffer.AllocValue[sample](context.Background(), pool)
	s.Seq, s.Value = 42, 1.5

	v, _ := buffer.View[sample](b)
	fmt.Println(v.Seq, v.Value, b.Len())
	b.Release()
	// Output: 42 1.5 16
}

// Dynamic types travel as msgpack; each memory is decoded once.
func ExampleMsgpack() {
	type event struct {
		Name string
		Tags []string
	}
	var codec buffer.Msgpack[event]
	b, _ := codec.Encode(context.Background(), buffer.Heap{}, &event{Name: "start", Tags: []string{"a", "b"}})
	e, _ := codec.Decode(b)
	c := b.Clone() // say, in another branch of a pipeline
	again, _ := codec.Decode(c)
	fmt.Println(e.Name, e.Tags, e == again)
	b.Release()
	c.Release()
	// Output: start [a b] true
}
