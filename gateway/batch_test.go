package gateway

import (
	"bytes"
	"encoding/binary"
	"errors"
	"testing"
)

// TestBatchRoundTrip: a batch decodes to its messages in order, with their
// origins, and decoding it allocates nothing.
func TestBatchRoundTrip(t *testing.T) {
	m := Meta{Seq: 10, Timestamp: -5, Publisher: 3, Gateway: "gw-1", Type: Type{Name: "acme.T", Size: 4, Align: 4}}
	b := AppendBatch(nil, m, []byte("a"), nil, bytes.Repeat([]byte{9}, 1000))
	var got []Meta
	var payloads [][]byte
	err := DecodeMessages(b, func(m Meta, p []byte) {
		got = append(got, m)
		payloads = append(payloads, p)
	})
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 3 || string(payloads[0]) != "a" || len(payloads[1]) != 0 || len(payloads[2]) != 1000 {
		t.Fatalf("decoded %d messages %q", len(got), payloads)
	}
	for k, g := range got {
		want := m
		want.Seq += uint64(k)
		if g != want {
			t.Fatalf("message %d: %+v, want %+v", k, g, want)
		}
	}
	if _, _, err := DecodeMessage(b); !errors.Is(err, ErrNotParallax) {
		t.Fatalf("DecodeMessage of a batch: %v, want ErrNotParallax", err)
	}
	// A whole message through DecodeMessages.
	w, _ := AppendMessage(nil, m, []byte("whole"))
	n := 0
	if err := DecodeMessages(w, func(g Meta, p []byte) {
		n++
		if g != m || string(p) != "whole" {
			t.Fatalf("whole message decoded as %+v %q", g, p)
		}
	}); err != nil || n != 1 {
		t.Fatalf("whole message: %d messages, %v", n, err)
	}
	var f frame
	allocs := testing.AllocsPerRun(100, func() {
		if err := parseFrame(b, &f); err != nil {
			t.Fatal(err)
		}
		for rest := f.payload; len(rest) > 0; {
			_, _, _, _, rest = nextRecord(rest)
		}
	})
	if allocs != 0 {
		t.Fatalf("%v allocations per batch, want 0", allocs)
	}
}

// TestBatchMalformed: every kind of malformed batch is refused with
// ErrNotParallax and a message naming what is wrong, before any of its
// messages is handed out; no truncation panics.
func TestBatchMalformed(t *testing.T) {
	m := Meta{Seq: 1, Publisher: 1, Gateway: "g", Type: Type{Name: "t"}}
	good := AppendBatch(nil, m, []byte("abc"), []byte("defg"))
	hdr := fixedLen + 2 // gateway id and type name of one byte each
	mutate := func(fn func(b []byte) []byte) []byte { return fn(append([]byte(nil), good...)) }
	cases := map[string][]byte{
		"count 0": mutate(func(b []byte) []byte { setCount(b, 0); return b }),
		"count 3, records for 2": mutate(func(b []byte) []byte {
			setCount(b, 3)
			return b
		}),
		"count beyond the bytes":  mutate(func(b []byte) []byte { setCount(b, 1<<30); return b }),
		"count 1, bytes after it": mutate(func(b []byte) []byte { setCount(b, 1); return b }),
		"record length overflow": mutate(func(b []byte) []byte {
			binary.LittleEndian.PutUint32(b[hdr+20:], 1<<31)
			return b
		}),
		"origin bytes not zero": mutate(func(b []byte) []byte { b[20] = 1; return b }),
		"both flags":            mutate(func(b []byte) []byte { b[3] = flagBatch | flagPart; return b }),
		"trailing byte":         append(append([]byte(nil), good...), 0),
	}
	for name, b := range cases {
		called := false
		err := DecodeMessages(b, func(Meta, []byte) { called = true })
		if !errors.Is(err, ErrNotParallax) || called {
			t.Errorf("%s: err %v, fn called %v; want ErrNotParallax and no call", name, err, called)
		}
	}
	for n := range len(good) {
		if err := DecodeMessages(good[:n], func(Meta, []byte) {}); !errors.Is(err, ErrNotParallax) {
			t.Fatalf("truncated to %d bytes: %v", n, err)
		}
	}
}

// FuzzParseBatch: any input decodes to records that lie inside it and
// number the count, or fails with ErrNotParallax.
func FuzzParseBatch(f *testing.F) {
	m := Meta{Seq: 1, Gateway: "g", Type: Type{Name: "t", Size: 4, Align: 4}}
	f.Add(AppendBatch(nil, m, []byte("data"), []byte("more")))
	f.Add(AppendBatch(nil, m, nil))
	f.Fuzz(func(t *testing.T, b []byte) {
		var fr frame
		if err := parseFrame(b, &fr); err != nil {
			if !errors.Is(err, ErrNotParallax) {
				t.Fatalf("error %v does not wrap ErrNotParallax", err)
			}
			return
		}
		if !fr.batch {
			return
		}
		n := uint32(0)
		for rest := fr.payload; len(rest) > 0; n++ {
			_, _, _, p, r := nextRecord(rest)
			if len(p) > len(rest) {
				t.Fatalf("record of %d bytes in %d", len(p), len(rest))
			}
			rest = r
		}
		if n != fr.count {
			t.Fatalf("%d records, count %d", n, fr.count)
		}
	})
}
