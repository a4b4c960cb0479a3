// Command dup is a test plugin that defines an element named like the
// example plugin's ("xor").
package main

import (
	"github.com/parallax-ipc/parallax/pipeline"
	"github.com/parallax-ipc/parallax/plugin"
)

// Parallax is the descriptor.
var Parallax = plugin.Descriptor{ABI: plugin.ABIVersion, Name: "dup", Version: "0.0.1",
	Elements: []pipeline.Factory{{Name: "xor", Kind: "transform", New: func(*pipeline.Props) (pipeline.Element, error) { return nil, nil }}}}

func main() {}
