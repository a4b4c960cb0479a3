package dataseg_test

import (
	"errors"
	"fmt"

	"github.com/parallax-ipc/parallax"
	"github.com/parallax-ipc/parallax/dataseg"
)

// The router formats a publisher's segment; the publisher fills a chunk and
// its header; a subscriber attaches read-only with the same descriptor and
// views the chunk its ref names.
func ExampleFormat() {
	d := dataseg.Desc{PubID: 3, Index: 0, ChunkSize: 256, Count: 4, PageSize: 4096}
	mem := make([]byte, dataseg.Size(d)) // a memfd mapping in real use

	if _, err := dataseg.Format(mem, d); err != nil { // router
		panic(err)
	}

	pub, err := dataseg.Attach(mem, d, false) // publisher, read-write
	if err != nil {
		panic(err)
	}
	n := copy(pub.Chunk(2), "hello")
	pub.SetMeta(2, dataseg.Meta{Length: uint32(n), Seq: 1})

	sub, err := dataseg.Attach(mem, d, true) // subscriber, read-only
	if err != nil {
		panic(err)
	}
	data, meta, err := sub.View(2)
	fmt.Printf("%q seq=%d err=%v\n", data, meta.Seq, err)

	_, _, err = sub.View(4) // a forged slot
	fmt.Println("invalid ref:", errors.Is(err, parallax.ErrInvalidRef))

	other := d
	other.Count = 8 // a descriptor that disagrees with the header
	_, err = dataseg.Attach(make([]byte, dataseg.Size(other)), other, true)
	fmt.Println("corrupt:", errors.Is(err, parallax.ErrCorrupt))
	// Output:
	// "hello" seq=1 err=<nil>
	// invalid ref: true
	// corrupt: true
}
