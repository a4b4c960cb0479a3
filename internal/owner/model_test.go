package owner

import (
	"fmt"
	"math/rand/v2"
	"slices"
	"testing"

	"github.com/parallax-ipc/parallax"
	"github.com/parallax-ipc/parallax/internal/testutil"
)

// compare checks the Tracker against the model: every chunk's units, the
// free stacks element by element (LIFO order), connection counts and stats.
func compare(t *Tracker, m *model, conns []*ConnTrack) error {
	if err := checkInvariants(t); err != nil {
		return err
	}
	for i := range m.chunkOf {
		idx := uint32(i)
		if t.chunks[i].fanout != m.units(idx) {
			return fmt.Errorf("chunk %d: fanout %d, model %d", i, t.chunks[i].fanout, m.units(idx))
		}
		if m.held(idx) && t.chunks[i].gen != m.chunkOf[i].gen {
			return fmt.Errorf("chunk %d: generation %d, model %d", i, t.chunks[i].gen, m.chunkOf[i].gen)
		}
	}
	for cl := range m.free {
		if !slices.Equal(t.classes[cl].free, m.free[cl]) {
			return fmt.Errorf("class %d free stack %v, model %v", cl, t.classes[cl].free, m.free[cl])
		}
	}
	for i, c := range conns {
		mc := m.conns[i]
		if c.Outstanding() != len(mc.bits) || c.Live() != (mc.state == connLive) || c.Gone() != (mc.state == connGone) {
			return fmt.Errorf("connection %d: outstanding %d live %v gone %v, model %d state %d",
				c.ID(), c.Outstanding(), c.Live(), c.Gone(), len(mc.bits), mc.state)
		}
	}
	if !slices.Equal(t.History(nil), m.hist) {
		return fmt.Errorf("history %v, model %v", t.History(nil), m.hist)
	}
	return nil
}

// TestTrackerMatchesModel applies seeded random operation sequences to a
// Tracker and to the model, requires identical results (indices, refs,
// error kinds, reclaim counts) and checks every invariant after each step.
func TestTrackerMatchesModel(t *testing.T) {
	t.Parallel()
	steps := 4000
	if testing.Short() {
		steps = 400
	}
	for _, cfg := range []Config{{}, {MaxLoans: 3, History: 2}, {MaxLoans: 6, History: 5}} {
		t.Run(fmt.Sprintf("loans=%d/history=%d", cfg.MaxLoans, cfg.History), func(t *testing.T) {
			t.Parallel()
			runModel(t, testutil.Rand(t), cfg, steps)
		})
	}
}

func runModel(t *testing.T, rng *rand.Rand, cfg Config, steps int) {
	tr, m := New(cfg), newModel(cfg)
	var conns []*ConnTrack
	var past []parallax.ChunkRef // every ref ever loaned
	nextSeg := uint16(0)

	addSeg := func(index uint16, size, count uint32) {
		_, err := tr.AddSegment(index, size, count)
		if got, want := kind(err), m.addSegment(index, size, count); got != want {
			t.Fatalf("AddSegment(%d, %d, %d): %q, model %q", index, size, count, got, want)
		}
	}
	addSeg(nextSeg, 64, uint32(1+rng.IntN(8)))
	nextSeg += 2 // leave index 1 absent: refs naming it must be refused

	pickIdx := func() uint32 {
		if k := sortedKeys(m.loaned); len(k) > 0 && rng.IntN(4) > 0 {
			return k[rng.IntN(len(k))]
		}
		if len(m.hist) > 0 && rng.IntN(2) == 0 {
			return m.hist[rng.IntN(len(m.hist))]
		}
		return uint32(rng.IntN(len(m.chunkOf) + 2))
	}
	for step := range steps {
		var what string
		op := rng.IntN(100)
		switch {
		case op < 2 && nextSeg < 8: // growth, or a new class
			size := []uint32{64, 128}[rng.IntN(2)]
			idx := nextSeg
			if rng.IntN(5) == 0 {
				idx = 0 // in use: refused
			} else {
				nextSeg++
			}
			what = fmt.Sprintf("AddSegment(%d, %d)", idx, size)
			addSeg(idx, size, uint32(1+rng.IntN(6)))
		case op < 6 && len(m.live()) < 4 || len(conns) == 0:
			id, bound := uint32(len(conns)), 1+rng.IntN(5)
			what = fmt.Sprintf("AddConn(%d, %d)", id, bound)
			c, err := tr.AddConn(id, bound)
			if err != nil {
				t.Fatal(err)
			}
			conns = append(conns, c)
			m.conns = append(m.conns, &mConn{id: id, bound: bound, bits: map[uint32]bool{}})
		case op < 8:
			i := rng.IntN(len(conns))
			what = fmt.Sprintf("CloseConn(%d)", i)
			tr.CloseConn(conns[i])
			if m.conns[i].state == connLive {
				m.conns[i].state = connClosing
			}
		case op < 10:
			i := rng.IntN(len(conns))
			what = fmt.Sprintf("ReclaimConn(%d)", i)
			if got, want := tr.ReclaimConn(conns[i]), m.reclaim(m.conns[i]); got != want {
				t.Fatalf("step %d %s: reclaimed %d, model %d", step, what, got, want)
			}
		case op < 35:
			cl := rng.IntN(len(m.class) + 1)
			what = fmt.Sprintf("Loan(%d)", cl)
			idx, ref, err := tr.Loan(cl)
			midx, mref, want := m.loan(cl)
			if kind(err) != want || (err == nil && (idx != midx || ref != mref)) {
				t.Fatalf("step %d %s: %d %v %q, model %d %v %q", step, what, idx, ref, kind(err), midx, mref, want)
			}
			if err == nil {
				past = append(past, ref)
			}
		case op < 55:
			i, idx := rng.IntN(len(conns)), pickIdx()
			if live := m.live(); len(live) > 0 && rng.IntN(5) > 0 {
				i = live[rng.IntN(len(live))]
			}
			what = fmt.Sprintf("Deliver(%d, %d)", i, idx)
			if got, want := kind(tr.Deliver(conns[i], idx)), m.deliver(m.conns[i], idx); got != want {
				t.Fatalf("step %d %s: %q, model %q", step, what, got, want)
			}
		case op < 67:
			idx, unloan := pickIdx(), rng.IntN(5) == 0
			what = fmt.Sprintf("Published(%d) unloan=%v", idx, unloan)
			f := tr.Published
			if unloan {
				f = tr.Unloan
			}
			if got, want := kind(f(idx)), m.published(idx, unloan); got != want {
				t.Fatalf("step %d %s: %q, model %q", step, what, got, want)
			}
		case op < 72:
			idx := pickIdx()
			what = fmt.Sprintf("HistoryPush(%d)", idx)
			if got, want := kind(tr.HistoryPush(idx)), m.historyPush(idx); got != want {
				t.Fatalf("step %d %s: %q, model %q", step, what, got, want)
			}
		default:
			i := rng.IntN(len(conns))
			if with := m.withBits(); len(with) > 0 && rng.IntN(4) > 0 {
				i = with[rng.IntN(len(with))]
			}
			ref := pickReturn(rng, m, i, past)
			what = fmt.Sprintf("Return(%d, %v)", i, ref)
			if got, want := kind(tr.Return(conns[i], ref)), m.ret(m.conns[i], ref); got != want {
				t.Fatalf("step %d %s: %q, model %q", step, what, got, want)
			}
		}
		if err := compare(tr, m, conns); err != nil {
			t.Fatalf("step %d after %s: %v", step, what, err)
		}
	}
	s := tr.Stats()
	t.Logf("final: %+v", s)
	if s.Loaned == 0 || s.Returned == 0 {
		t.Fatalf("the random walk never loaned or returned: %+v", s)
	}
}

// pickReturn chooses what subscriber i pushes into its return ring: mostly
// an honest return, otherwise a double or stale return, another
// connection's chunk, or garbage.
func pickReturn(rng *rand.Rand, m *model, i int, past []parallax.ChunkRef) parallax.ChunkRef {
	mk := func(idx uint32) parallax.ChunkRef {
		ch := m.chunkOf[idx]
		return parallax.MakeRef(uint32(ch.seg), ch.slot, ch.gen)
	}
	switch k := rng.IntN(10); {
	case k < 6:
		if bits := sortedKeys(m.conns[i].bits); len(bits) > 0 {
			return mk(bits[rng.IntN(len(bits))])
		}
	case k < 8:
		if len(past) > 0 {
			return past[rng.IntN(len(past))]
		}
	case k < 9:
		o := m.conns[rng.IntN(len(m.conns))]
		if bits := sortedKeys(o.bits); len(bits) > 0 {
			return mk(bits[rng.IntN(len(bits))])
		}
	}
	if rng.IntN(2) == 0 {
		return parallax.ChunkRef(rng.Uint64())
	}
	return parallax.MakeRef(uint32(rng.IntN(4)), uint32(rng.IntN(9)), uint32(rng.IntN(3)))
}
