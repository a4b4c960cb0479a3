// Command badabi is a test plugin whose descriptor has a future ABI version.
package main

import (
	"github.com/parallax-ipc/parallax/pipeline"
	"github.com/parallax-ipc/parallax/plugin"
)

// Parallax is the descriptor, with an ABI version the host does not know.
var Parallax = plugin.Descriptor{ABI: plugin.ABIVersion + 98, Name: "badabi", Version: "0.0.1",
	Elements: []pipeline.Factory{{Name: "badabi", Kind: "sink", New: func(*pipeline.Props) (pipeline.Element, error) { return nil, nil }}}}

func main() {}
