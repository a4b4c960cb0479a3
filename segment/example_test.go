package segment_test

import (
	"fmt"
	"log"

	"github.com/parallax-ipc/parallax/hugepages"
	"github.com/parallax-ipc/parallax/segment"
)

// The router creates a segment and hands subscribers a read-only fd.
func ExampleNewMemfd() {
	seg, err := segment.NewMemfd("frames", 1<<20, segment.MemfdOptions{})
	if err != nil {
		log.Fatal(err)
	}
	defer seg.Close()

	ro, err := seg.ReadOnlyFile() // send ro over SCM_RIGHTS, with seg.Handle()
	if err != nil {
		log.Fatal(err)
	}
	// In the subscriber, after receiving the fd:
	sub, err := segment.Open(ro, segment.OpenOptions{ReadOnly: true, ExpectedSize: seg.Handle().Size, RequireSeals: true})
	if err != nil {
		ro.Close()
		log.Fatal(err)
	}
	defer sub.Close()
	fmt.Println(sub.Kind(), sub.Len())
	// Output: memfd 1048576
}

// Hugepages are used when the host has them; otherwise the segment says why
// not.
func ExampleNewHugepage() {
	seg, err := segment.NewHugepage("big", 64<<20, segment.HugepageOptions{Mode: hugepages.Auto})
	if err != nil {
		log.Fatal(err)
	}
	defer seg.Close()
	if r := seg.FallbackReason(); r != "" {
		log.Printf("segment %q uses base pages: %s", seg.Handle().Name, r)
	}
}
