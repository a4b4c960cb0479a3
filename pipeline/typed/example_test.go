package typed_test

import (
	"context"
	"fmt"
	"io"

	"github.com/parallax-ipc/parallax/pipeline"
	"github.com/parallax-ipc/parallax/pipeline/typed"
)

// A typed pipeline: the compiler checks that each stage gets the type the
// previous one produces.
func Example() {
	var g pipeline.Graph
	n := 0
	nums, _ := typed.Source(&g, "nums", func(context.Context) (int64, error) {
		if n == 5 {
			return 0, io.EOF
		}
		n++
		return int64(n), nil
	})
	odd, _ := typed.Filter(nums, "odd", func(v int64) bool { return v%2 == 1 })
	sq, _ := typed.Map(odd, "square", func(_ context.Context, v int64) (int64, error) { return v * v, nil })
	_ = typed.Sink(sq, "print", func(_ context.Context, v int64) error {
		fmt.Println(v)
		return nil
	})
	if err := pipeline.Run(context.Background(), &g, pipeline.Options{}); err != nil {
		fmt.Println(err)
	}
	// Output:
	// 1
	// 9
	// 25
}
