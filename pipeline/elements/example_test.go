package elements_test

import (
	"context"
	"fmt"

	"github.com/parallax-ipc/parallax/pipeline"
	"github.com/parallax-ipc/parallax/pipeline/elements"
)

// Elements can be wired in Go without a launch line: a test source feeding
// a checksum sink.
func ExampleChecksum() {
	var g pipeline.Graph
	_ = g.Add("src", &elements.TestSrc{Size: 1024, NumBuffers: 50, Pattern: "counter"})
	sum := &elements.Checksum{}
	_ = g.Add("sum", sum)
	_ = g.Link("src", "sum")
	if err := pipeline.Run(context.Background(), &g, pipeline.Options{}); err != nil {
		panic(err)
	}
	r := sum.Result()
	fmt.Println(r.Buffers, r.Bytes)
	// Output: 50 51200
}
