// Command plugin is an example Parallax element plugin: an "xor" transform
// that XORs every payload byte with a key. Build it with
//
//	go build -buildmode=plugin -o $HOME/.parallax/plugins/xor.so ./examples/plugin
//
// and load it by pointing PARALLAX_PLUGIN_PATH at the directory:
//
//	PARALLAX_PLUGIN_PATH=$HOME/.parallax/plugins parallax inspect xor
//	PARALLAX_PLUGIN_PATH=$HOME/.parallax/plugins parallax launch "testsrc num-buffers=100 ! xor key=0x5a ! fakesink"
//
// The plugin must be built with the same toolchain and flags (-race too) as
// the parallax binary that loads it.
package main

import (
	"context"
	"fmt"

	"github.com/parallax-ipc/parallax/buffer"
	"github.com/parallax-ipc/parallax/pipeline"
	"github.com/parallax-ipc/parallax/plugin"
)

// Parallax is the plugin's descriptor, looked up by the loader.
var Parallax = plugin.Descriptor{
	ABI:         plugin.ABIVersion,
	Name:        "xor",
	Version:     "1.0.0",
	Description: "example plugin: XOR transform",
	Elements:    []pipeline.Factory{xorFactory},
}

var xorFactory = pipeline.Factory{
	Name: "xor", Kind: "transform",
	Description: "XORs every payload byte with a key (applying it twice restores the data)",
	Properties: []pipeline.PropSpec{
		{Name: "key", Type: pipeline.PropInt, Default: "255", Description: "byte to XOR with", Min: 0, Max: 255},
	},
	New: func(p *pipeline.Props) (pipeline.Element, error) {
		return &Xor{Key: byte(p.Int("key"))}, nil
	},
}

// Xor writes each input buffer XOR Key into a new buffer from its
// negotiated allocator: when an ipcsink is downstream that buffer is a
// chunk of shared memory, so the result crosses the process boundary
// without a copy. (It never writes into its input, which may be a
// read-only sample from an ipcsrc.)
type Xor struct {
	Key   byte
	alloc buffer.Allocator
}

// UseAllocator implements pipeline.AllocatorUser.
func (x *Xor) UseAllocator(a buffer.Allocator) { x.alloc = a }

// Process implements pipeline.Transform.
func (x *Xor) Process(ctx context.Context, in *buffer.Buffer) (*buffer.Buffer, error) {
	defer in.Release()
	out, err := x.alloc.Alloc(ctx, in.Len())
	if err != nil {
		return nil, fmt.Errorf("xor: %w", err)
	}
	src, dst := in.Bytes(), out.Bytes()
	for i, b := range src {
		dst[i] = b ^ x.Key
	}
	out.Meta = in.Meta
	return out, nil
}

// main is never run for a plugin; it lets `go build ./...` build this
// package as an ordinary command too.
func main() {}
