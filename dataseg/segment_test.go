package dataseg

import (
	"bytes"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/parallax-ipc/parallax"
)

func TestAttachRoundTrip(t *testing.T) {
	t.Parallel()
	d := Desc{PubID: 7, Index: 2, ChunkSize: 256, Count: 5, PageSize: 4096}
	w, mem := mustFormat(t, d)
	before := bytes.Clone(mem)
	r, err := Attach(mem, d, true)
	require.NoError(t, err)
	require.Equal(t, before, mem, "Attach must write nothing")
	require.Equal(t, d, r.Desc())
	require.EqualValues(t, 5, r.Count())
	require.Equal(t, 256, r.ChunkSize())
	require.True(t, r.ReadOnly())
	require.False(t, w.ReadOnly())

	n := copy(w.Chunk(4), "payload")
	w.SetMeta(4, Meta{Length: uint32(n), Seq: 9})
	p, m, err := r.View(4)
	require.NoError(t, err)
	require.Equal(t, "payload", string(p))
	require.Equal(t, len(p), cap(p), "a view's capacity ends at its length")
	require.EqualValues(t, 9, m.Seq)
	require.Equal(t, 256, cap(w.Chunk(4)))

	// The payload sits where the layout says.
	require.Equal(t, "payload", string(mem[PayloadOffset(d)+4*256:][:7]))

	// A longer mapping (page-rounded by the caller) is fine.
	_, err = Attach(append(bytes.Clone(mem), make([]byte, 4096)...), d, false)
	require.NoError(t, err)
}

// TestAttachRejectsEveryField corrupts each header field in turn, and
// presents descriptors that disagree with the header in each field.
func TestAttachRejectsEveryField(t *testing.T) {
	t.Parallel()
	d := Desc{PubID: 7, Index: 2, ChunkSize: 256, Count: 5, PageSize: 4096}
	_, mem := mustFormat(t, d)
	for i := 0; i < HeaderSize; i++ {
		c := bytes.Clone(mem)
		c[i] ^= 0x40
		_, err := Attach(c, d, true)
		if i >= CountersOffset && i < CountersOffset+CountersSize {
			require.NoError(t, err, "header byte %d (the publisher's counters) flipped", i)
			continue
		}
		require.ErrorIs(t, err, parallax.ErrCorrupt, "header byte %d flipped", i)
	}
	others := map[string]Desc{
		"publisher id":  {PubID: 8, Index: 2, ChunkSize: 256, Count: 5, PageSize: 4096},
		"segment index": {PubID: 7, Index: 3, ChunkSize: 256, Count: 5, PageSize: 4096},
		"flags":         {PubID: 7, Index: 2, ChunkSize: 256, Count: 5, PageSize: 4096, Flags: FlagHugetlb},
		"chunk size":    {PubID: 7, Index: 2, ChunkSize: 192, Count: 5, PageSize: 4096},
		"count":         {PubID: 7, Index: 2, ChunkSize: 256, Count: 4, PageSize: 4096},
		"page size":     {PubID: 7, Index: 2, ChunkSize: 256, Count: 5, PageSize: 8192},
	}
	for name, o := range others {
		_, err := Attach(append(bytes.Clone(mem), make([]byte, 8192)...), o, true)
		require.ErrorIs(t, err, parallax.ErrCorrupt, name)
		require.ErrorContains(t, err, name)
	}
	_, err := Attach(mem[:len(mem)-1], d, true)
	require.ErrorIs(t, err, parallax.ErrCorrupt, "short memory")
	_, err = Format(mem[:len(mem)-1], d)
	require.ErrorIs(t, err, parallax.ErrCorrupt, "short memory")
}

func TestViewRejects(t *testing.T) {
	t.Parallel()
	d := Desc{ChunkSize: 64, Count: 3, PageSize: 4096}
	w, mem := mustFormat(t, d)
	r, err := Attach(mem, d, true)
	require.NoError(t, err)

	for _, slot := range []uint32{3, 4, 1 << 23, ^uint32(0)} {
		_, _, err := r.View(slot)
		require.ErrorIs(t, err, ErrSlot)
		require.ErrorIs(t, err, parallax.ErrInvalidRef)
	}
	// A publisher that writes a length past the chunk: rejected, not clamped
	// into a view of the next chunk.
	w.SetMeta(1, Meta{Length: 64})
	p, _, err := r.View(1)
	require.NoError(t, err)
	require.Len(t, p, 64)
	mem[HeadersOffset+ChunkHeaderSize] = 65
	_, _, err = r.View(1)
	require.ErrorIs(t, err, ErrLength)
	require.ErrorIs(t, err, parallax.ErrCorrupt)
	// Rewriting the segment header after Attach changes nothing.
	mem[offCount] = 200
	_, _, err = r.View(3)
	require.ErrorIs(t, err, ErrSlot)

	var zero Segment
	_, _, err = zero.View(0)
	require.ErrorIs(t, err, ErrSlot)
}

func TestOwnerOnlyPanics(t *testing.T) {
	t.Parallel()
	d := Desc{ChunkSize: 64, Count: 2, PageSize: 4096}
	w, mem := mustFormat(t, d)
	r, err := Attach(mem, d, true)
	require.NoError(t, err)
	require.PanicsWithValue(t, "dataseg: Chunk on read-only segment 0 of publisher 0", func() { r.Chunk(0) })
	require.Panics(t, func() { r.SetMeta(0, Meta{}) })
	require.PanicsWithValue(t, "dataseg: Chunk(slot 2) out of range (count 2)", func() { w.Chunk(2) })
	require.Panics(t, func() { w.SetMeta(2, Meta{}) })
	require.Panics(t, func() { w.SetMeta(0, Meta{Length: 65}) })
}

// TestViewConcurrent runs readers beside a writer of other slots under the
// race detector: View only reads.
func TestViewConcurrent(t *testing.T) {
	t.Parallel()
	d := Desc{ChunkSize: 64, Count: 8, PageSize: 4096}
	w, mem := mustFormat(t, d)
	w.SetMeta(0, Meta{Length: 3})
	r, err := Attach(mem, d, true)
	require.NoError(t, err)
	done := make(chan error, 4)
	for range 4 {
		go func() {
			for range 1000 {
				if _, m, err := r.View(0); err != nil || m.Length != 3 {
					done <- err
					return
				}
			}
			done <- nil
		}()
	}
	for i := range 1000 {
		w.SetMeta(1+uint32(i%7), Meta{Length: uint32(i % 64)})
	}
	for range 4 {
		require.NoError(t, <-done)
	}
}

func TestViewAllocs(t *testing.T) {
	d := Desc{ChunkSize: 64, Count: 2, PageSize: 4096}
	w, _ := mustFormat(t, d)
	w.SetMeta(1, Meta{Length: 10})
	n := testing.AllocsPerRun(100, func() {
		if _, _, err := w.View(1); err != nil {
			t.Fatal(err)
		}
	})
	require.Zero(t, n)
}
