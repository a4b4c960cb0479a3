//go:build integration

package integration

import (
	"context"
	"encoding/binary"
	"errors"
	"flag"
	"fmt"
	"hash/crc32"
	"io"
	"math"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/parallax-ipc/parallax/buffer"
	"github.com/parallax-ipc/parallax/pipeline"
	"github.com/parallax-ipc/parallax/pipeline/elements"
)

// Pipelines across processes in the owned memory model (issue 12 step 10):
// upstream elements write into the ipcsink publisher's own data segment
// (no byte copied on the way), and each buffer's metadata crosses in the
// chunk header.

func init() {
	childRoles["pipemeta-src"] = pipeMetaSrcMain
	childRoles["pipemeta-sink"] = pipeMetaSinkMain
}

// TestPipelineOwnedAcrossTwoProcesses is TestPipelineAcrossTwoProcesses on
// an owned router, through the real CLI: every 64 KiB buffer testsrc fills
// is a chunk of the sink publisher's own segment (0 copies), and the file
// written in the other process is byte-exact.
func TestPipelineOwnedAcrossTwoProcesses(t *testing.T) {
	t.Parallel()
	const n, size = 4000, 64 << 10
	r := startRouterWith(t, ownedConfig)
	ctx, cancel := context.WithTimeout(context.Background(), childTimeout)
	defer cancel()
	out := filepath.Join(t.TempDir(), "v.bin")
	sink := launch(t, ctx, cancel, r, "sink", fmt.Sprintf(`ipcsrc topic=v num-buffers=%d ! checksum ! filesink location=%q`, n, out))
	src := launch(t, ctx, cancel, r, "source", fmt.Sprintf(`testsrc num-buffers=%d size=64KiB pattern=random ! checksum ! ipcsink topic=v max-payload=64KiB wait-subscribers=1 block-timeout=1m`, n))
	srcOut := src.wait(t)
	sinkOut := sink.wait(t)

	sent := checksumOf(t, "source", srcOut)
	require.Equal(t, fmt.Sprintf(" buffers=%d bytes=%d", n, n*size), sent[len("crc32c:12345678"):])
	require.Equal(t, sent, checksumOf(t, "sink", sinkOut))
	sum, fileSize := fileCRC(t, out)
	require.Equal(t, int64(n*size), fileSize)
	require.Equal(t, sent, sum+fmt.Sprintf(" buffers=%d bytes=%d", n, n*size))
	require.Contains(t, srcOut, fmt.Sprintf("ipcsink0: ipcsink published=%d bytes=%d zero-copy=%d copied=0 copied-bytes=0 dropped=0", n, n*size, n))
}

// TestPipelineOwnedMetadata: one process runs "metasrc ! ipcsink", another
// "ipcsrc ! metacheck", on an owned router. Every buffer's PTS, DTS,
// duration, offset, flags and Seq (the producer's, not the publisher's)
// arrive exactly as set, extreme values included; the producer's buffers
// were the sink's chunks (0 copies); and the receiver holds at most 2
// samples at once (it waits for its buffers to be released).
func TestPipelineOwnedMetadata(t *testing.T) {
	t.Parallel()
	const n = 3000
	r := startRouterWith(t, ownedConfig)
	sink := spawn(t, "sink", "pipemeta-sink", "-socket", r.Socket, "-n", strconv.Itoa(n))
	sink.expect("ready")
	src := spawn(t, "source", "pipemeta-src", "-socket", r.Socket, "-n", strconv.Itoa(n))
	sent := src.expect("sent ")
	stats := src.expect("stats ")
	got := sink.expect("got ")
	src.wait()
	sink.wait()

	require.Equal(t, []string{strconv.Itoa(n)}, got[:1], "buffers received with their exact metadata")
	require.Equal(t, sent, got, "count and CRC of (metadata, payload) on both sides")
	require.Equal(t, fmt.Sprintf("published=%d bytes=%d zero-copy=%d copied=0 copied-bytes=0 dropped=0", n, n*pipeMetaSize, n),
		strings.Join(stats, " "), "every buffer was the sink's own chunk")
}

// pipeMetaSize is the payload of every buffer of the metadata test.
const pipeMetaSize = 256

// pipeMeta is the metadata of buffer i: every field differs per buffer,
// and some take extreme values (NoTime, the minimum duration, the
// maximum offset and sequence, a flag package buffer does not name).
func pipeMeta(i int) buffer.Meta {
	m := buffer.Meta{
		PTS:      time.Duration(i) * 40 * time.Millisecond,
		DTS:      time.Duration(i-2) * 40 * time.Millisecond,
		Duration: 40*time.Millisecond - time.Duration(i),
		Seq:      uint64(i)*7919 + 3,
		Offset:   uint64(i) * 188,
		Flags:    buffer.Flags(i*5) & 0x1f,
	}
	switch i % 7 {
	case 1:
		m.PTS, m.DTS = buffer.NoTime, buffer.NoTime
	case 2:
		m.Duration, m.Offset, m.Seq = math.MinInt64, math.MaxUint64, math.MaxUint64
	case 3:
		m.Flags |= 1 << 30
	}
	return m
}

// metaCRC adds buffer b (metadata, then payload) to crc.
func metaCRC(crc uint32, m buffer.Meta, payload []byte) uint32 {
	var w [44]byte
	le := binary.LittleEndian
	le.PutUint64(w[0:], uint64(m.PTS))
	le.PutUint64(w[8:], uint64(m.DTS))
	le.PutUint64(w[16:], uint64(m.Duration))
	le.PutUint64(w[24:], m.Seq)
	le.PutUint64(w[32:], m.Offset)
	le.PutUint32(w[40:], uint32(m.Flags))
	crc = crc32.Update(crc, crcTable, w[:])
	return crc32.Update(crc, crcTable, payload)
}

// pipeMetaSrc produces n buffers from its negotiated allocator: buffer i
// holds i and pattern bytes, with pipeMeta(i).
type pipeMetaSrc struct {
	alloc buffer.Allocator
	n, i  int
	crc   uint32
}

func (s *pipeMetaSrc) UseAllocator(a buffer.Allocator) { s.alloc = a }

func (s *pipeMetaSrc) Produce(ctx context.Context) (*buffer.Buffer, error) {
	if s.i == s.n {
		return nil, io.EOF
	}
	b, err := s.alloc.Alloc(ctx, pipeMetaSize)
	if err != nil {
		return nil, err
	}
	fill(b.Bytes(), uint64(s.i))
	b.Meta = pipeMeta(s.i)
	s.crc = metaCRC(s.crc, b.Meta, b.Bytes())
	s.i++
	return b, nil
}

// pipeMetaCheck checks every buffer's payload and metadata against what
// pipeMetaSrc made.
type pipeMetaCheck struct {
	n   int
	crc uint32
}

func (c *pipeMetaCheck) Consume(_ context.Context, b *buffer.Buffer) error {
	defer b.Release()
	i := c.n
	if err := verify(b.Bytes(), uint64(i)); err != nil {
		return fmt.Errorf("buffer %d: %w", i, err)
	}
	if want := pipeMeta(i); b.Meta != want {
		return fmt.Errorf("buffer %d: metadata %+v, want %+v", i, b.Meta, want)
	}
	c.crc = metaCRC(c.crc, b.Meta, b.Bytes())
	c.n++
	return nil
}

func pipeMetaFlags(role string, args []string) (socket string, n int, ok bool) {
	fs := flag.NewFlagSet(role, flag.ContinueOnError)
	fs.StringVar(&socket, "socket", "", "router socket")
	fs.IntVar(&n, "n", 0, "buffers")
	return socket, n, fs.Parse(args) == nil
}

// pipeMetaSrcMain runs "pipeMetaSrc ! ipcsink" and prints "sent <n>
// <crc>" and "stats <IPCSinkStats>".
func pipeMetaSrcMain(args []string) int {
	socket, n, ok := pipeMetaFlags("pipemeta-src", args)
	if !ok {
		return 2
	}
	ctx, cancel := context.WithTimeout(context.Background(), childTimeout)
	defer cancel()
	src := &pipeMetaSrc{n: n}
	sink := &elements.IPCSink{Topic: "meta", Socket: socket, WaitSubscribers: 1, BlockTimeout: time.Minute, MaxPayload: pipeMetaSize}
	var g pipeline.Graph
	if err := errors.Join(g.Add("src", src), g.Add("sink", sink), g.Chain("src", "sink")); err != nil {
		return childFail("pipemeta-src", "graph: %v", err)
	}
	if err := pipeline.Run(ctx, &g, pipeline.Options{}); err != nil {
		return childFail("pipemeta-src", "run: %v", err)
	}
	fmt.Printf("sent %d %08x\n", src.i, src.crc)
	fmt.Printf("stats %s\n", sink.Stats())
	return 0
}

// pipeMetaSinkMain runs "ipcsrc max-held=2 ! pipeMetaCheck", prints
// "ready" once subscribed and "got <n> <crc>" at the end.
func pipeMetaSinkMain(args []string) int {
	socket, n, ok := pipeMetaFlags("pipemeta-sink", args)
	if !ok {
		return 2
	}
	ctx, cancel := context.WithTimeout(context.Background(), childTimeout)
	defer cancel()
	src := &elements.IPCSrc{Topic: "meta", Socket: socket, NumBuffers: int64(n), MaxHeld: 2, Queue: 64}
	check := &pipeMetaCheck{}
	var g pipeline.Graph
	if err := errors.Join(g.Add("src", src), g.Add("check", check), g.Chain("src", "check")); err != nil {
		return childFail("pipemeta-sink", "graph: %v", err)
	}
	p, err := pipeline.New(&g, pipeline.Options{})
	if err != nil {
		return childFail("pipemeta-sink", "new: %v", err)
	}
	if err := p.Start(ctx); err != nil {
		return childFail("pipemeta-sink", "start: %v", err)
	}
	fmt.Println("ready")
	if err := p.Wait(); err != nil {
		return childFail("pipemeta-sink", "run: %v", err)
	}
	fmt.Printf("got %d %08x\n", check.n, check.crc)
	_ = os.Stdout.Sync()
	return 0
}
