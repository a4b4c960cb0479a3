package elements

import (
	"context"
	"encoding/binary"
	"fmt"
	"hash"
	"hash/crc32"
	"hash/fnv"
	"sync/atomic"

	"github.com/parallax-ipc/parallax/pipeline"
)

// Checksum algorithms.
const (
	AlgoCRC32C  = "crc32c"  // CRC-32 Castagnoli (hardware accelerated)
	AlgoFNV1a64 = "fnv1a64" // 64-bit FNV-1a
)

// ChecksumEvent is the name of the custom event a [Checksum] posts at end of
// stream; its value is a [ChecksumResult].
const ChecksumEvent = "checksum"

// ChecksumResult is a checksum over a stream's payload bytes.
type ChecksumResult struct {
	Algorithm string
	Sum       uint64
	Buffers   uint64
	Bytes     uint64
}

// String formats the result as "crc32c:1a2b3c4d buffers=N bytes=M".
func (r ChecksumResult) String() string {
	return fmt.Sprintf("%s:%0*x buffers=%d bytes=%d", r.Algorithm, digits(r.Algorithm), r.Sum, r.Buffers, r.Bytes)
}

func digits(algo string) int {
	if algo == AlgoCRC32C {
		return 8
	}
	return 16
}

// Checksum hashes the payload of every buffer, in order, and passes the
// buffers on unchanged (or releases them when it has no output, acting as a
// sink). At end of stream it posts a [ChecksumEvent]; Result may be read at
// any time from any goroutine.
type Checksum struct {
	Algorithm string // AlgoCRC32C (default) or AlgoFNV1a64

	result atomic.Pointer[ChecksumResult]
}

var checksumFactory = pipeline.Factory{
	Name: "checksum", Kind: "transform",
	Description: "Checksums the payload stream (CRC-32C or FNV-1a 64) and passes buffers on; a sink when unlinked downstream",
	Properties: []pipeline.PropSpec{
		{Name: "algorithm", Type: pipeline.PropEnum, Default: AlgoCRC32C, Enum: []string{AlgoCRC32C, AlgoFNV1a64}, Description: "hash function"},
	},
	New: func(p *pipeline.Props) (pipeline.Element, error) {
		return &Checksum{Algorithm: p.String("algorithm")}, nil
	},
}

// PadSpec implements [pipeline.PadDeclarer]: one input, zero or one output.
func (c *Checksum) PadSpec() pipeline.PadSpec {
	return pipeline.PadSpec{MinIn: 1, MaxIn: 1, MinOut: 0, MaxOut: 1}
}

// ForwardsAllocation implements [pipeline.AllocationForwarder].
func (c *Checksum) ForwardsAllocation() bool { return true }

// Result returns the checksum so far.
func (c *Checksum) Result() ChecksumResult {
	if r := c.result.Load(); r != nil {
		return *r
	}
	return ChecksumResult{Algorithm: c.algo()}
}

func (c *Checksum) algo() string {
	if c.Algorithm == "" {
		return AlgoCRC32C
	}
	return c.Algorithm
}

// Run implements [pipeline.Runner].
func (c *Checksum) Run(ctx context.Context, p *pipeline.Pads) error {
	var h hash.Hash
	var crc uint32
	algo := c.algo()
	tab := crc32.MakeTable(crc32.Castagnoli)
	if algo == AlgoFNV1a64 {
		h = fnv.New64a()
	} else if algo != AlgoCRC32C {
		return fmt.Errorf("unknown checksum algorithm %q", algo)
	}
	var r ChecksumResult
	r.Algorithm = algo
	publish := func() {
		if h != nil {
			r.Sum = binary.BigEndian.Uint64(h.Sum(nil))
		} else {
			r.Sum = uint64(crc)
		}
		cp := r
		c.result.Store(&cp)
	}
	for {
		b, ok := p.Recv(0)
		if !ok {
			break
		}
		if h != nil {
			h.Write(b.Bytes())
		} else {
			crc = crc32.Update(crc, tab, b.Bytes())
		}
		r.Buffers++
		r.Bytes += uint64(b.Len())
		if p.NumOut() == 0 {
			p.Sent(b.Len())
			b.Release()
		} else if p.Push(0, b) != nil {
			break
		}
		if r.Buffers%1024 == 0 {
			publish()
		}
	}
	publish()
	p.Post(ChecksumEvent, c.Result())
	return nil
}
