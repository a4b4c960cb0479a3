package mempool

import (
	"testing"

	"github.com/parallax-ipc/parallax"
)

// FuzzValidateRef feeds arbitrary refs to every ref-taking method of a pool
// with some held chunks: nothing may panic, and a ref accepted by Validate
// must be one the pool handed out.
func FuzzValidateRef(f *testing.F) {
	const id, count = 3, 70
	f.Add(uint64(0), uint8(0))
	f.Add(uint64(parallax.MakeRef(id, 0, 1)), uint8(1))
	f.Add(uint64(parallax.MakeRef(id, count-1, 1)), uint8(2))
	f.Add(uint64(parallax.MakeRef(id, count, 1)), uint8(3))
	f.Add(uint64(parallax.MakeRef(id, 5, parallax.GenMask)), uint8(4))
	f.Add(^uint64(0), uint8(5))
	f.Fuzz(func(t *testing.T, raw uint64, op uint8) {
		p := newPool(t, id, Class{ChunkSize: 64, Count: count})
		held := map[parallax.ChunkRef]bool{}
		for range 5 {
			r, err := p.Loan(1)
			if err != nil {
				t.Fatal(err)
			}
			held[r] = true
		}
		ref := parallax.ChunkRef(raw)
		err := p.Validate(ref)
		if err == nil && !held[ref] {
			t.Fatalf("Validate accepted %v, which was never handed out", ref)
		}
		switch op % 8 {
		case 0:
			_, err = p.Release(ref)
		case 1:
			err = p.AddRef(ref, uint32(op))
		case 2:
			_, err = p.Payload(ref)
		case 3:
			_, err = p.Data(ref)
		case 4:
			_, err = p.Meta(ref)
		case 5:
			err = p.SetMeta(ref, Meta{Length: uint64(op)})
		case 6:
			err = p.SetLength(ref, int(op))
		case 7:
			_, err = p.Slot(ref.Slot())
		}
		if op%8 != 7 && err == nil && !held[ref] {
			t.Fatalf("op %d accepted %v, which was never handed out", op%8, ref)
		}
		a := p.Audit()
		if a.LostFree+a.FalseFree+a.Corrupt != 0 || a.Free+a.InUse != count {
			t.Fatalf("inconsistent after op %d on %v: %v", op%8, ref, a)
		}
	})
}

// FuzzAttach overlays arbitrary bytes on a formatted management area (and
// tries them as a whole area too): Attach must return an error or a pool
// that works without panicking.
func FuzzAttach(f *testing.F) {
	c := Class{ChunkSize: 64, Count: 70}
	valid := HeapRegion(MgmtSize(c))
	if _, err := Format(valid, 1, c); err != nil {
		f.Fatal(err)
	}
	f.Add(append([]byte(nil), valid...), uint16(0))
	f.Add(append([]byte(nil), valid[:HeaderSize]...), uint16(0))
	f.Add(append([]byte(nil), valid[:HeaderSize]...), uint16(12))
	f.Add([]byte("PLXPOOL\x00"), uint16(0))
	f.Fuzz(func(t *testing.T, data []byte, at uint16) {
		for _, whole := range []bool{false, true} {
			var mgmt []byte
			if whole {
				mgmt = HeapRegion(len(data))
				copy(mgmt, data)
			} else {
				mgmt = HeapRegion(len(valid))
				copy(mgmt, valid)
				if int(at) < len(mgmt) {
					copy(mgmt[at:], data)
				}
			}
			p, err := Attach(mgmt, nil)
			if err != nil {
				continue
			}
			// Exercise the attached pool; corrupt bitmap or ctl words must
			// not make it panic or hand out a slot twice.
			cl := p.Class()
			if err := p.SetPayload(HeapRegion(cl.PayloadSize())); err != nil {
				t.Fatal(err)
			}
			seen := map[uint32]bool{}
			var refs []parallax.ChunkRef
			for range min(cl.Count, 100) + 1 {
				r, err := p.Loan(1)
				if err != nil {
					break
				}
				if seen[r.Slot()] {
					t.Fatalf("slot %d handed out twice", r.Slot())
				}
				seen[r.Slot()] = true
				refs = append(refs, r)
			}
			for _, r := range refs {
				if _, err := p.Payload(r); err != nil {
					t.Fatal(err)
				}
				if _, err := p.Release(r); err != nil {
					t.Fatal(err)
				}
			}
			p.Audit()
			p.Stats()
		}
	})
}
