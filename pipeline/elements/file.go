package elements

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"

	"github.com/parallax-ipc/parallax/buffer"
	"github.com/parallax-ipc/parallax/pipeline"
)

// FileSrc reads the file at Location in buffers of BlockSize bytes (0:
// 4 KiB); the last one may be shorter. Buffer Offset is the file offset.
// Start opens the file, Close closes it.
type FileSrc struct {
	Location  string
	BlockSize int

	f     *os.File
	alloc buffer.Allocator
	off   uint64
	seq   uint64
}

var fileSrcFactory = pipeline.Factory{
	Name: "filesrc", Kind: "source",
	Description: "Reads a file in blocks",
	Properties: []pipeline.PropSpec{
		{Name: "location", Type: pipeline.PropString, Description: "path of the file to read (required)"},
		{Name: "blocksize", Type: pipeline.PropBytes, Default: "4KiB", Description: "bytes per buffer", Min: 1, Max: 1 << 30},
	},
	New: func(p *pipeline.Props) (pipeline.Element, error) {
		if p.String("location") == "" {
			return nil, errors.New("property location is required")
		}
		return &FileSrc{Location: p.String("location"), BlockSize: int(p.Bytes("blocksize"))}, nil
	},
}

// Start implements [pipeline.Starter].
func (s *FileSrc) Start(context.Context) error {
	f, err := os.Open(s.Location)
	if err != nil {
		return err
	}
	s.f = f
	return nil
}

// UseAllocator implements [pipeline.AllocatorUser].
func (s *FileSrc) UseAllocator(a buffer.Allocator) { s.alloc = a }

// PadTypes implements [pipeline.TypeDeclarer].
func (s *FileSrc) PadTypes() (in, out string) { return "", "bytes" }

// Produce implements [pipeline.Source].
func (s *FileSrc) Produce(ctx context.Context) (*buffer.Buffer, error) {
	if s.f == nil {
		return nil, errors.New("filesrc not started")
	}
	bs := s.BlockSize
	if bs <= 0 {
		bs = 4096
	}
	if s.alloc == nil {
		s.alloc = buffer.Heap{}
	}
	b, err := s.alloc.Alloc(ctx, bs)
	if err != nil {
		return nil, err
	}
	n, err := io.ReadFull(s.f, b.Bytes())
	if n == 0 {
		b.Release()
		if err == io.EOF || err == nil {
			return nil, io.EOF
		}
		return nil, fmt.Errorf("read %s: %w", s.Location, err)
	}
	if err != nil && err != io.ErrUnexpectedEOF {
		b.Release()
		return nil, fmt.Errorf("read %s: %w", s.Location, err)
	}
	_ = b.SetLen(n)
	b.Meta = buffer.Meta{Seq: s.seq, Offset: s.off, PTS: buffer.NoTime, DTS: buffer.NoTime}
	s.seq++
	s.off += uint64(n)
	return b, nil
}

// Close implements io.Closer.
func (s *FileSrc) Close() error {
	if s.f == nil {
		return nil
	}
	err := s.f.Close()
	s.f = nil
	return err
}

// FileSink writes every buffer's bytes to the file at Location (created or
// truncated, or appended to with Append); Sync makes Close fsync it.
type FileSink struct {
	Location string
	Append   bool
	Sync     bool

	f *os.File
}

var fileSinkFactory = pipeline.Factory{
	Name: "filesink", Kind: "sink",
	Description: "Writes buffers to a file",
	Properties: []pipeline.PropSpec{
		{Name: "location", Type: pipeline.PropString, Description: "path of the file to write (required)"},
		{Name: "append", Type: pipeline.PropBool, Default: "false", Description: "append instead of truncating"},
		{Name: "sync", Type: pipeline.PropBool, Default: "false", Description: "fsync the file at end of stream"},
	},
	New: func(p *pipeline.Props) (pipeline.Element, error) {
		if p.String("location") == "" {
			return nil, errors.New("property location is required")
		}
		return &FileSink{Location: p.String("location"), Append: p.Bool("append"), Sync: p.Bool("sync")}, nil
	},
}

// Start implements [pipeline.Starter].
func (s *FileSink) Start(context.Context) error {
	flags := os.O_WRONLY | os.O_CREATE | os.O_TRUNC
	if s.Append {
		flags = os.O_WRONLY | os.O_CREATE | os.O_APPEND
	}
	f, err := os.OpenFile(s.Location, flags, 0o644)
	if err != nil {
		return err
	}
	s.f = f
	return nil
}

// Consume implements [pipeline.Sink].
func (s *FileSink) Consume(_ context.Context, b *buffer.Buffer) error {
	defer b.Release()
	if s.f == nil {
		return errors.New("filesink not started")
	}
	if _, err := s.f.Write(b.Bytes()); err != nil {
		return fmt.Errorf("write %s: %w", s.Location, err)
	}
	return nil
}

// Close implements io.Closer.
func (s *FileSink) Close() error {
	if s.f == nil {
		return nil
	}
	var err error
	if s.Sync {
		err = s.f.Sync()
	}
	if cerr := s.f.Close(); err == nil {
		err = cerr
	}
	s.f = nil
	return err
}
