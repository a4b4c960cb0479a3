package pipeline_test

import (
	"context"
	"errors"
	"fmt"

	"github.com/parallax-ipc/parallax/pipeline"
	"github.com/parallax-ipc/parallax/pipeline/elements"
)

// A launch line with a tee: both branches see every buffer, and the
// checksums agree.
func ExampleLaunch() {
	g, err := pipeline.Launch("testsrc num-buffers=100 size=4KiB ! tee name=t  t. ! queue ! checksum name=a  t. ! checksum name=b", nil)
	if err != nil {
		panic(err)
	}
	if err := pipeline.Run(context.Background(), g, pipeline.Options{}); err != nil {
		panic(err)
	}
	a := g.Element("a").(*elements.Checksum).Result()
	b := g.Element("b").(*elements.Checksum).Result()
	fmt.Println(a.Buffers, a.Bytes, a.Sum == b.Sum)
	// Output: 100 409600 true
}

// Launch errors point at the column and suggest the closest name.
func ExampleLaunch_error() {
	_, err := pipeline.Launch("testsrc sise=4KiB ! fakesink", nil)
	var se *pipeline.SyntaxError
	if errors.As(err, &se) {
		fmt.Println(se)
		fmt.Println(se.Caret())
	}
	// Output:
	// launch: column 9: testsrc: unknown property "sise" (did you mean "size"?)
	// testsrc sise=4KiB ! fakesink
	//         ^
}

// Graphs can be built in Go, with events observed on a listener.
func ExampleNew() {
	var g pipeline.Graph
	_ = g.Add("src", &elements.TestSrc{Size: 64, NumBuffers: 10})
	_ = g.Add("bad", &elements.Identity{ErrorAfter: 3})
	_ = g.Add("sink", &elements.FakeSink{})
	_ = g.Chain("src", "bad", "sink")

	p, err := pipeline.New(&g, pipeline.Options{})
	if err != nil {
		panic(err)
	}
	events := p.Events(64)
	_ = p.Start(context.Background())
	fmt.Println(p.Wait())
	for e := range events.C {
		if e.Kind == pipeline.EventError || e.Kind == pipeline.EventStopped {
			fmt.Println(e.Kind, e.Node)
		}
	}
	// Output:
	// node "bad": error-after: failing on buffer 3 as configured
	// error bad
	// stopped
}
