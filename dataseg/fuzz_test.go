package dataseg

import (
	"bytes"
	"errors"
	"testing"

	"github.com/parallax-ipc/parallax"
)

// FuzzAttach overwrites a formatted segment's header with arbitrary bytes
// and attaches with an arbitrary descriptor: Attach must never panic, must
// fail with ErrDesc or ErrCorrupt, and may succeed only when the header is
// exactly what Format writes for that descriptor, except for the
// publisher's counters (bytes 64..95: the publisher's own word, which
// Attach does not check).
func FuzzAttach(f *testing.F) {
	good := Desc{PubID: 1, Index: 0, ChunkSize: 64, Count: 4, PageSize: 4096}
	gmem := make([]byte, Size(good))
	if _, err := Format(gmem, good); err != nil {
		f.Fatal(err)
	}
	f.Add(gmem[:HeaderSize], uint32(1), uint16(0), uint16(0), uint32(64), uint32(4), uint32(4096))
	f.Add(make([]byte, HeaderSize), uint32(0), uint16(0), uint16(0), uint32(64), uint32(1), uint32(4096))
	f.Add(bytes.Repeat([]byte{0xff}, HeaderSize), ^uint32(0), ^uint16(0), ^uint16(0), ^uint32(0), ^uint32(0), ^uint32(0))
	f.Fuzz(func(t *testing.T, header []byte, pub uint32, idx, flags uint16, chunk, count, page uint32) {
		d := Desc{PubID: pub, Index: idx, Flags: flags, ChunkSize: chunk, Count: count, PageSize: page}
		size := Size(d)
		if size == 0 || size > 1<<22 {
			// Invalid or too large to allocate per run: Attach must still
			// refuse it without touching memory.
			if _, err := Attach(make([]byte, HeaderSize), d, true); err == nil {
				t.Fatalf("Attach accepted %+v over %d bytes (layout size %d)", d, HeaderSize, size)
			}
			return
		}
		mem := make([]byte, size)
		copy(mem, header)
		want := make([]byte, size)
		if _, err := Format(want, d); err != nil {
			t.Fatalf("Format(%+v): %v", d, err)
		}
		s, err := Attach(mem, d, true)
		if err != nil {
			if !errors.Is(err, parallax.ErrCorrupt) {
				t.Fatalf("Attach error does not wrap ErrCorrupt: %v", err)
			}
			return
		}
		// The publisher's counters are its own word: not checked.
		copy(mem[CountersOffset:CountersOffset+CountersSize], want[CountersOffset:CountersOffset+CountersSize])
		if !bytes.Equal(mem[:HeaderSize], want[:HeaderSize]) {
			t.Fatalf("Attach accepted a header that differs from Format's for %+v", d)
		}
		if s.Count() != d.Count || s.ChunkSize() != int(d.ChunkSize) {
			t.Fatalf("segment geometry %d×%d, want %d×%d", s.Count(), s.ChunkSize(), d.Count, d.ChunkSize)
		}
	})
}

// FuzzView writes arbitrary chunk headers (as a hostile publisher could) and
// views arbitrary slots: View must never panic, must reject slots out of
// range and lengths above the chunk size, and every view it returns must lie
// inside that slot's chunk.
func FuzzView(f *testing.F) {
	f.Add(uint32(0), uint32(0), []byte{})
	f.Add(uint32(3), uint32(64), []byte{64})
	f.Add(uint32(4), uint32(1), []byte{1, 2, 3})
	f.Add(^uint32(0), ^uint32(0), bytes.Repeat([]byte{0xff}, 256))
	d := Desc{PubID: 1, ChunkSize: 64, Count: 4, PageSize: 4096}
	f.Fuzz(func(t *testing.T, slot, length uint32, table []byte) {
		mem := make([]byte, Size(d))
		w, err := Format(mem, d)
		if err != nil {
			t.Fatal(err)
		}
		copy(mem[HeadersOffset:HeadersOffset+int(d.Count)*ChunkHeaderSize], table)
		if slot < d.Count && len(table) == 0 {
			w.headers[int(slot)*ChunkHeaderSize] = byte(length) // a direct length byte too
		}
		for i := range int(d.Count) * int(d.ChunkSize) {
			w.payload[i] = byte(i / int(d.ChunkSize)) // each chunk filled with its slot number
		}
		r, err := Attach(mem, d, true)
		if err != nil {
			t.Fatal(err)
		}
		p, m, err := r.View(slot)
		switch {
		case slot >= d.Count:
			if !errors.Is(err, ErrSlot) || !errors.Is(err, parallax.ErrInvalidRef) {
				t.Fatalf("View(%d) beyond count: err %v", slot, err)
			}
			return
		case err != nil:
			if !errors.Is(err, ErrLength) || !errors.Is(err, parallax.ErrCorrupt) {
				t.Fatalf("View(%d): unexpected error %v", slot, err)
			}
			return
		}
		if m.Length > d.ChunkSize || len(p) != int(m.Length) || cap(p) != len(p) {
			t.Fatalf("View(%d): length %d, len %d cap %d, chunk size %d", slot, m.Length, len(p), cap(p), d.ChunkSize)
		}
		for i, b := range p {
			if b != byte(slot) {
				t.Fatalf("View(%d) byte %d belongs to chunk %d", slot, i, b)
			}
		}
	})
}
