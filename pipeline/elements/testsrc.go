package elements

import (
	"context"
	"fmt"
	"io"
	"time"

	"github.com/parallax-ipc/parallax/buffer"
	"github.com/parallax-ipc/parallax/pipeline"
)

// Patterns of [TestSrc].
const (
	PatternZero    = "zero"    // all bytes 0
	PatternCounter = "counter" // byte i of buffer n is byte(n + i)
	PatternRandom  = "random"  // deterministic pseudo-random bytes (seeded by the sequence number)
	PatternNone    = "none"    // leave the memory as allocated (fastest)
)

// TestSrc produces NumBuffers buffers (0: unlimited) of Size bytes filled
// with Pattern, at Rate buffers per second (0: as fast as downstream
// takes them). Buffer n has Seq n, Offset n*Size and, when paced, PTS
// n/Rate and a Duration of 1/Rate.
//
// Set the fields before the pipeline starts; the zero value produces
// unlimited empty buffers of pattern zero.
type TestSrc struct {
	Size       int
	Pattern    string
	NumBuffers int64
	Rate       float64

	alloc buffer.Allocator
	n     uint64
	pace  pacer
}

var testSrcFactory = pipeline.Factory{
	Name: "testsrc", Kind: "source",
	Description: "Produces test buffers of a size and pattern, optionally paced",
	Properties: []pipeline.PropSpec{
		{Name: "size", Type: pipeline.PropBytes, Default: "4KiB", Description: "bytes per buffer", Max: 1 << 40},
		{Name: "pattern", Type: pipeline.PropEnum, Default: PatternCounter, Enum: []string{PatternZero, PatternCounter, PatternRandom, PatternNone}, Description: "content of the buffers"},
		{Name: "num-buffers", Type: pipeline.PropInt, Default: "-1", Description: "buffers before end of stream (-1 or 0: unlimited)"},
		{Name: "rate", Type: pipeline.PropFloat, Default: "0", Description: "buffers per second (0: unpaced)", Min: 0, Max: 1e9},
	},
	New: func(p *pipeline.Props) (pipeline.Element, error) {
		return &TestSrc{Size: int(p.Bytes("size")), Pattern: p.String("pattern"), NumBuffers: p.Int("num-buffers"), Rate: p.Float("rate")}, nil
	},
}

// UseAllocator implements [pipeline.AllocatorUser].
func (s *TestSrc) UseAllocator(a buffer.Allocator) { s.alloc = a }

// PadTypes implements [pipeline.TypeDeclarer]: raw bytes.
func (s *TestSrc) PadTypes() (in, out string) { return "", "bytes" }

// Produce implements [pipeline.Source].
func (s *TestSrc) Produce(ctx context.Context) (*buffer.Buffer, error) {
	if s.NumBuffers > 0 && s.n >= uint64(s.NumBuffers) {
		return nil, io.EOF
	}
	if s.Rate > 0 {
		if err := s.pace.waitUntil(ctx, rateOffset(s.n, s.Rate)); err != nil {
			return nil, err
		}
	}
	if s.alloc == nil {
		s.alloc = buffer.Heap{}
	}
	b, err := s.alloc.Alloc(ctx, s.Size)
	if err != nil {
		return nil, fmt.Errorf("allocate buffer %d: %w", s.n, err)
	}
	fill(b.Bytes(), s.Pattern, s.n)
	b.Meta = buffer.Meta{Seq: s.n, Offset: s.n * uint64(s.Size), PTS: buffer.NoTime, DTS: buffer.NoTime}
	if s.Rate > 0 {
		b.Meta.PTS = rateOffset(s.n, s.Rate)
		b.Meta.Duration = time.Duration(float64(time.Second) / s.Rate)
	}
	s.n++
	return b, nil
}

func fill(p []byte, pattern string, n uint64) {
	switch pattern {
	case PatternNone:
	case PatternCounter:
		for i := range p {
			p[i] = byte(n + uint64(i))
		}
	case PatternRandom:
		x := n*0x9E3779B97F4A7C15 + 1
		for i := range p {
			x ^= x << 13
			x ^= x >> 7
			x ^= x << 17
			p[i] = byte(x)
		}
	default:
		clear(p)
	}
}
