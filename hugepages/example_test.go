package hugepages_test

import (
	"fmt"

	"github.com/parallax-ipc/parallax/hugepages"
)

// Decide tells whether a 64 MiB segment can live on 2 MiB pages here.
func ExampleDecide() {
	d := hugepages.Decide(hugepages.Auto, 64<<20)
	if d.UseHuge {
		fmt.Printf("using %d KiB pages\n", d.PageSize>>10)
	} else {
		fmt.Println("falling back:", d.Reason)
	}
}
