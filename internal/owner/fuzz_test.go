package owner

import (
	"encoding/binary"
	"testing"

	"github.com/parallax-ipc/parallax"
)

// FuzzReturn feeds arbitrary return-ring contents to a Tracker with chunks
// outstanding on two connections (one shared, fan-out 2): every record is a
// connection and either an honest ref (possibly a second time), a ref
// with its generation or slot changed, another connection's ref, or raw
// garbage. A ref is accepted iff its chunk is outstanding on that connection
// under that generation; a refused ref changes nothing, and no chunk is
// ever freed while a connection, loan or history entry still holds it.
func FuzzReturn(f *testing.F) {
	f.Add([]byte{0, 0, 0, 0, 0, 0, 0, 0, 0})
	f.Add([]byte{0, 1, 0, 0, 0, 0, 0, 0, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0})
	f.Add([]byte{1, 0, 0, 0, 0, 0, 0, 0, 0, 3, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff})
	f.Add([]byte{2, 3, 0, 0, 0, 0, 0, 0, 0, 5, 2, 0, 0, 0, 0, 0, 0, 0})
	f.Fuzz(func(t *testing.T, data []byte) {
		tr := New(Config{History: 1})
		if _, err := tr.AddSegment(0, 64, 8); err != nil {
			t.Fatal(err)
		}
		if _, err := tr.AddSegment(2, 128, 4); err != nil { // index 1 absent
			t.Fatal(err)
		}
		var c [2]*ConnTrack
		for i := range c {
			c[i], _ = tr.AddConn(uint32(i), 8)
		}
		out := [2]map[parallax.ChunkRef]bool{{}, {}} // the reference: refs outstanding per connection
		var refs []parallax.ChunkRef
		for i, to := range [][]int{{0}, {1}, {0, 1}, {0}, {1}, {}} {
			cl := i % 2
			idx, ref, err := tr.Loan(cl)
			if err != nil {
				t.Fatal(err)
			}
			for _, k := range to {
				if err := tr.Deliver(c[k], idx); err != nil {
					t.Fatal(err)
				}
				out[k][ref] = true
			}
			if i == 5 {
				if err := tr.HistoryPush(idx); err != nil {
					t.Fatal(err)
				}
			}
			if err := tr.Published(idx); err != nil {
				t.Fatal(err)
			}
			refs = append(refs, ref)
		}
		for ; len(data) >= 9; data = data[9:] {
			k := int(data[0] & 1)
			raw := binary.LittleEndian.Uint64(data[1:9])
			var ref parallax.ChunkRef
			switch data[0] >> 1 & 3 {
			case 0: // an honest (or repeated) ref
				ref = refs[raw%uint64(len(refs))]
			case 1: // generation changed
				r := refs[raw%uint64(len(refs))]
				ref = parallax.MakeRef(r.Pool(), r.Slot(), uint32(raw>>8)&parallax.GenMask)
			case 2: // slot changed
				r := refs[raw%uint64(len(refs))]
				ref = parallax.MakeRef(r.Pool(), uint32(raw>>8)%(parallax.MaxSlots), r.Gen())
			default:
				ref = parallax.ChunkRef(raw)
			}
			before := tr.Stats()
			err := tr.Return(c[k], ref)
			if out[k][ref] {
				if err != nil {
					t.Fatalf("honest return of %v on %d refused: %v", ref, k, err)
				}
				delete(out[k], ref)
			} else {
				if err == nil {
					t.Fatalf("Return(%d, %v) accepted a ref not outstanding there", k, ref)
				}
				if after := tr.Stats(); after.Free != before.Free || after.Units != before.Units || after.Outstanding != before.Outstanding {
					t.Fatalf("refused Return(%d, %v) changed the accounting: %+v -> %+v", k, ref, before, after)
				}
			}
			if err := checkInvariants(tr); err != nil {
				t.Fatal(err)
			}
			if c[0].Outstanding() != len(out[0]) || c[1].Outstanding() != len(out[1]) {
				t.Fatalf("outstanding %d/%d, reference %d/%d", c[0].Outstanding(), c[1].Outstanding(), len(out[0]), len(out[1]))
			}
		}
	})
}
