package gateway

import (
	"bytes"
	"testing"
)

// TestFrameNoAllocs: encoding a message's header and decoding it, the
// per-message work of exporter and importer, allocate nothing.
func TestFrameNoAllocs(t *testing.T) {
	typ := Type{Name: "acme.Frame", Size: 0, Align: 8}
	whole := appendPrefix(nil, "gw-1", typ, false)
	payload := bytes.Repeat([]byte{1}, 1024)
	buf := make([]byte, 0, len(whole)+len(payload))
	var tr seqTracker
	seq := uint64(0)
	allocs := testing.AllocsPerRun(1000, func() {
		seq++
		buf = append(append(buf[:0], whole...), payload...)
		setOrigin(buf, seq, 42, 7)
		var f frame
		if err := parseFrame(buf, &f); err != nil {
			t.Fatal(err)
		}
		if f.seq != seq || !f.isType(typ) || string(f.gateway) != "gw-1" || len(f.payload) != len(payload) {
			t.Fatalf("decoded %+v", f)
		}
		tr.track(f.gateway, f.publisher, f.seq)
	})
	if allocs != 0 {
		t.Fatalf("%v allocations per message, want 0", allocs)
	}
	if tr.gaps != 0 || tr.reordered != 0 {
		t.Fatalf("tracker counted %d gaps, %d reordered", tr.gaps, tr.reordered)
	}
}

// TestSeqTrackerBounded: a peer inventing origins cannot grow the tracker
// beyond maxOrigins.
func TestSeqTrackerBounded(t *testing.T) {
	var tr seqTracker
	for i := range 3 * maxOrigins {
		tr.track([]byte{byte(i), byte(i >> 8)}, uint32(i), 1)
	}
	n := 0
	for _, pubs := range tr.byGateway {
		n += len(pubs)
	}
	if n > maxOrigins || tr.origins != n {
		t.Fatalf("%d origins remembered (counted %d), limit %d", n, tr.origins, maxOrigins)
	}
	tr.track([]byte("g"), 1, 5)
	tr.track([]byte("g"), 1, 9)
	tr.track([]byte("h"), 1, 1)
	tr.track([]byte("g"), 1, 8)
	if tr.gaps != 3 || tr.reordered != 1 {
		t.Fatalf("gaps %d reordered %d, want 3 and 1", tr.gaps, tr.reordered)
	}
}

// FuzzParseFrame: any input either fails with ErrNotParallax or decodes to
// fields inside the input and consistent with each other.
func FuzzParseFrame(f *testing.F) {
	m := Meta{Seq: 1, Gateway: "g", Type: Type{Name: "t", Size: 4, Align: 4}}
	whole, _ := AppendMessage(nil, m, []byte("data"))
	f.Add(whole)
	part := appendPrefix(nil, "g", m.Type, true)
	setPart(part, 10, 1, 2, 6)
	f.Add(append(part, "abcd"...))
	f.Fuzz(func(t *testing.T, b []byte) {
		var fr frame
		if err := parseFrame(b, &fr); err != nil {
			return
		}
		if len(fr.gateway) == 0 || len(fr.payload) > len(b) {
			t.Fatalf("bad decode %+v", fr)
		}
		if fr.split && (fr.part >= fr.count || fr.count < 2 || fr.offset+uint64(len(fr.payload)) > fr.total) {
			t.Fatalf("inconsistent part %+v", fr)
		}
	})
}
