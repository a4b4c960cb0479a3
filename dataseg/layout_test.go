package dataseg

import (
	"bytes"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/parallax-ipc/parallax"
)

// TestLayout pins the data segment ABI: every constant, every header and
// chunk-header offset, and the geometry computed for representative
// descriptors. A change here is a layout change and needs a new
// LayoutVersion.
func TestLayout(t *testing.T) {
	t.Parallel()
	var m [8]byte
	binary.LittleEndian.PutUint64(m[:], Magic)
	require.Equal(t, "PLXDSEG1", string(m[:]))
	require.EqualValues(t, 2, LayoutVersion)
	require.Equal(t, 128, HeaderSize)
	require.Equal(t, 128, HeadersOffset)
	require.Equal(t, 64, ChunkHeaderSize)
	require.Equal(t, 64, ChunkAlign)
	require.Equal(t, 1<<24, MaxCount)
	require.Equal(t, 1<<30, MaxChunkSize)
	require.Equal(t, 4096, MinPageSize)
	require.Equal(t, 1<<30, MaxPageSize)
	require.EqualValues(t, 1, FlagHugetlb)

	header := []struct {
		name      string
		off, want int
	}{
		{"magic", offMagic, 0}, {"version", offVersion, 8}, {"index", offIndex, 12},
		{"flags", offFlags, 14}, {"pub id", offPubID, 16}, {"chunk size", offChunkSize, 20},
		{"count", offCount, 24}, {"stride", offStride, 28}, {"headers offset", offHeadersOffset, 32},
		{"payload offset", offPayloadOffset, 40}, {"segment size", offSegmentSize, 48},
		{"page size", offPageSize, 56}, {"reserved", offReserved, 60},
		{"published", offPublished, 64}, {"delivered", offDelivered, 72}, {"dropped", offDropped, 80},
		{"unconnected", offUnconnected, 88}, {"reserved after the counters", offReserved2, 96},
	}
	for _, f := range header {
		require.Equal(t, f.want, f.off, "segment header field %s", f.name)
	}
	chunk := []struct {
		name      string
		off, want int
	}{
		{"length", metaLength, 0}, {"flags", metaFlags, 4}, {"seq", metaSeq, 8},
		{"stamp", metaStamp, 16}, {"pts", metaPTS, 24}, {"dts", metaDTS, 32},
		{"duration", metaDuration, 40}, {"offset", metaOffset, 48}, {"user seq", metaUserSeq, 56},
	}
	for _, f := range chunk {
		require.Equal(t, f.want, f.off, "chunk header field %s", f.name)
	}

	geometry := []struct {
		d                Desc
		payloadOff, size int
	}{
		// 128 + 64 = 192, already 64-aligned; one page.
		{Desc{ChunkSize: 64, Count: 1, PageSize: 4096}, 192, 4096},
		// The design's 64 B / 1 subscriber publisher: 276 chunks.
		{Desc{ChunkSize: 64, Count: 276, PageSize: 4096}, 128 + 276*64, 36864},
		// 192 B chunks align to 256: 128 + 10*64 = 768 is aligned already.
		{Desc{ChunkSize: 192, Count: 10, PageSize: 4096}, 768, 4096},
		// 128 B chunks align to 128: 128 + 3*64 = 320 rounds up to 384.
		{Desc{ChunkSize: 128, Count: 3, PageSize: 4096}, 384, 4096},
		// Page-sized chunks align to the page.
		{Desc{ChunkSize: 4096, Count: 3, PageSize: 4096}, 4096, 16384},
		// Chunks above the page size align only to the page.
		{Desc{ChunkSize: 64000, Count: 2, PageSize: 4096}, 4096, 135168},
		// 4 MiB chunks on 2 MiB hugepages.
		{Desc{ChunkSize: 4 << 20, Count: 12, PageSize: 2 << 20, Flags: FlagHugetlb}, 2 << 20, 50 << 20},
	}
	for _, g := range geometry {
		t.Run(fmt.Sprintf("chunk=%d/count=%d/page=%d", g.d.ChunkSize, g.d.Count, g.d.PageSize), func(t *testing.T) {
			require.NoError(t, g.d.Validate())
			require.Equal(t, g.payloadOff, PayloadOffset(g.d))
			require.Equal(t, g.size, Size(g.d))
		})
	}
}

// TestFormatHeaderBytes pins the exact header Format writes.
func TestFormatHeaderBytes(t *testing.T) {
	t.Parallel()
	d := Desc{PubID: 0x01020304, Index: 0x0506, Flags: FlagHugetlb, ChunkSize: 128, Count: 3, PageSize: 4096}
	_, mem := mustFormat(t, d)
	want := "504c58445345473102000000060501000403020180000000030000004000000080000000000000008001000000000000" +
		"00100000000000000010000000000000"
	require.Equal(t, want, hex.EncodeToString(mem[:64]))
	require.Equal(t, make([]byte, HeaderSize-64), mem[64:HeaderSize], "reserved bytes")
}

// TestFormatHeaderOnly checks that FormatHeader writes, over stale bytes,
// exactly the header Format writes and returns the segment's size, and
// that it refuses a short buffer and an invalid Desc.
func TestFormatHeaderOnly(t *testing.T) {
	t.Parallel()
	d := Desc{PubID: 0x01020304, Index: 0x0506, Flags: FlagHugetlb, ChunkSize: 128, Count: 3, PageSize: 4096}
	_, mem := mustFormat(t, d)
	h := bytes.Repeat([]byte{0xa5}, HeaderSize)
	size, err := FormatHeader(h, d)
	require.NoError(t, err)
	require.Equal(t, Size(d), size)
	require.Equal(t, mem[:HeaderSize], h)

	_, err = FormatHeader(h[:HeaderSize-1], d)
	require.ErrorIs(t, err, parallax.ErrCorrupt)
	_, err = FormatHeader(h, Desc{PubID: 1, ChunkSize: 100, Count: 1, PageSize: 4096})
	require.ErrorIs(t, err, ErrDesc)
}

// TestChunkHeaderBytes pins where SetMeta puts each field.
func TestChunkHeaderBytes(t *testing.T) {
	t.Parallel()
	s, mem := mustFormat(t, Desc{ChunkSize: 64, Count: 2, PageSize: 4096})
	m := Meta{Length: 0x11, Flags: 0x22, Seq: 0x33, Stamp: 0x44, PTS: -1, DTS: 0x66, Duration: 0x77, Offset: 0x88, UserSeq: 0x99}
	s.SetMeta(1, m)
	h := mem[HeadersOffset+ChunkHeaderSize : HeadersOffset+2*ChunkHeaderSize]
	le := binary.LittleEndian
	require.EqualValues(t, 0x11, le.Uint32(h[0:]))
	require.EqualValues(t, 0x22, le.Uint32(h[4:]))
	require.EqualValues(t, 0x33, le.Uint64(h[8:]))
	require.EqualValues(t, 0x44, le.Uint64(h[16:]))
	require.Equal(t, ^uint64(0), le.Uint64(h[24:]))
	require.EqualValues(t, 0x66, le.Uint64(h[32:]))
	require.EqualValues(t, 0x77, le.Uint64(h[40:]))
	require.EqualValues(t, 0x88, le.Uint64(h[48:]))
	require.EqualValues(t, 0x99, le.Uint64(h[56:]))
	require.Equal(t, make([]byte, ChunkHeaderSize), mem[HeadersOffset:HeadersOffset+ChunkHeaderSize], "slot 0 untouched")
	_, got, err := s.View(1)
	require.NoError(t, err)
	require.Equal(t, m, got)
}

func TestDescValidate(t *testing.T) {
	t.Parallel()
	ok := Desc{ChunkSize: 64, Count: 1, PageSize: 4096}
	bad := map[string]Desc{
		"chunk size 0":          {ChunkSize: 0, Count: 1, PageSize: 4096},
		"chunk size not k×64":   {ChunkSize: 100, Count: 1, PageSize: 4096},
		"chunk size too big":    {ChunkSize: MaxChunkSize + 64, Count: 1, PageSize: 4096},
		"count 0":               {ChunkSize: 64, Count: 0, PageSize: 4096},
		"count too big":         {ChunkSize: 64, Count: MaxCount + 1, PageSize: 4096},
		"page size 0":           {ChunkSize: 64, Count: 1},
		"page size not pow2":    {ChunkSize: 64, Count: 1, PageSize: 6000},
		"page size below 4 KiB": {ChunkSize: 64, Count: 1, PageSize: 2048},
		"unknown flag":          {ChunkSize: 64, Count: 1, PageSize: 4096, Flags: 2},
	}
	require.NoError(t, ok.Validate())
	for name, d := range bad {
		err := d.Validate()
		require.ErrorIs(t, err, ErrDesc, name)
		require.Zero(t, Size(d), name)
		require.Zero(t, PayloadOffset(d), name)
		_, err = Format(make([]byte, 8192), d)
		require.True(t, errors.Is(err, ErrDesc), "Format %s: %v", name, err)
		_, err = Attach(make([]byte, 8192), d, true)
		require.True(t, errors.Is(err, ErrDesc), "Attach %s: %v", name, err)
	}
}

// TestCounters: the owner's SetCounters lands in header bytes 64..95, where
// ReadCounters (pread of the segment's file) and Counters find them; a
// read-only Segment has none to set; Max never lowers a counter.
func TestCounters(t *testing.T) {
	t.Parallel()
	d := Desc{PubID: 7, Index: 0, ChunkSize: 256, Count: 5, PageSize: 4096}
	s, mem := mustFormat(t, d)
	require.Equal(t, Counters{}, s.Counters())
	s.SetCounters(10, 20, 3, 4)
	want := Counters{Published: 10, Delivered: 20, Dropped: 3, Unconnected: 4}
	require.Equal(t, want, s.Counters())
	require.EqualValues(t, 10, binary.LittleEndian.Uint64(mem[64:]))
	require.EqualValues(t, 4, binary.LittleEndian.Uint64(mem[88:]))
	require.True(t, allZeroBytes(mem[96:128]), "bytes 96..127 stay reserved")
	got, err := ReadCounters(bytes.NewReader(mem))
	require.NoError(t, err)
	require.Equal(t, want, got)
	_, err = ReadCounters(bytes.NewReader(mem[:80]))
	require.ErrorIs(t, err, parallax.ErrCorrupt)

	ro, err := Attach(mem, d, true)
	require.NoError(t, err, "counters do not fail Attach")
	require.Equal(t, Counters{}, ro.Counters())
	require.Panics(t, func() { ro.SetCounters(1, 1, 1, 1) })

	require.Equal(t, Counters{Published: 12, Delivered: 20, Dropped: 5, Unconnected: 4},
		want.Max(Counters{Published: 12, Delivered: 2, Dropped: 5}))
}

func allZeroBytes(b []byte) bool {
	for _, x := range b {
		if x != 0 {
			return false
		}
	}
	return true
}
