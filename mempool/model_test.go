package mempool

import (
	"fmt"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/parallax-ipc/parallax"
	"github.com/parallax-ipc/parallax/internal/testutil"
)

// refModel is a deliberately simple reference for a Pool: a slice of slot
// states and counters, no bitmap, no atomics.
type refModel struct {
	id                      uint16
	slots                   []SlotState
	inUse, hw, failed, lent uint64
}

func newRefModel(id uint16, count uint32) *refModel {
	m := &refModel{id: id, slots: make([]SlotState, count)}
	for i := range m.slots {
		m.slots[i].Gen = 1
	}
	return m
}

// check returns the sentinel a Pool must return for ref, or nil.
func (m *refModel) check(ref parallax.ChunkRef) error {
	if ref.Pool() != uint32(m.id) || ref.Slot() >= uint32(len(m.slots)) || ref.Gen() == 0 {
		return parallax.ErrInvalidRef
	}
	s := m.slots[ref.Slot()]
	if s.Gen != ref.Gen() {
		return parallax.ErrStaleRef
	}
	if s.RefCount == 0 {
		return parallax.ErrNotHeld
	}
	return nil
}

func (m *refModel) hasFree() bool {
	for _, s := range m.slots {
		if s.RefCount == 0 {
			return true
		}
	}
	return false
}

// TestPoolMatchesModel applies random operations to a Pool and to refModel
// and requires identical outcomes, slot states and statistics after every
// step.
func TestPoolMatchesModel(t *testing.T) {
	t.Parallel()
	steps := 5000
	if testing.Short() {
		steps = 500
	}
	for _, count := range []uint32{1, 10, 70} {
		t.Run(fmt.Sprintf("count=%d", count), func(t *testing.T) {
			t.Parallel()
			rng := testutil.Rand(t)
			const id = 4
			p := newPool(t, id, Class{ChunkSize: 64, Count: count})
			m := newRefModel(id, count)
			var history []parallax.ChunkRef // every ref ever handed out

			pick := func() parallax.ChunkRef {
				switch k := rng.IntN(10); {
				case k < 7 && len(history) > 0:
					return history[rng.IntN(len(history))]
				case k < 9: // plausible forgery
					return parallax.MakeRef(uint32(rng.IntN(id+2)), uint32(rng.IntN(int(count)+2)), uint32(rng.IntN(4)))
				default:
					return parallax.ChunkRef(rng.Uint64())
				}
			}
			for step := range steps {
				switch op := rng.IntN(4); op {
				case 0: // loan
					owner := uint16(rng.IntN(5))
					ref, err := p.Loan(owner)
					if !m.hasFree() {
						require.ErrorIs(t, err, parallax.ErrPoolExhausted, "step %d", step)
						m.failed++
						break
					}
					require.NoError(t, err, "step %d", step)
					s := &m.slots[ref.Slot()]
					require.Zero(t, s.RefCount, "step %d: loaned held slot %v", step, ref)
					require.Equal(t, s.Gen, ref.Gen(), "step %d", step)
					s.RefCount, s.Owner = 1, owner
					m.inUse++
					m.hw = max(m.hw, m.inUse)
					m.lent++
					history = append(history, ref)
				case 1: // addref
					ref, n := pick(), uint32(rng.IntN(3))
					want := m.check(ref)
					err := p.AddRef(ref, n)
					if want != nil {
						require.ErrorIs(t, err, want, "step %d addref %v", step, ref)
						break
					}
					require.NoError(t, err, "step %d", step)
					m.slots[ref.Slot()].RefCount += n
				case 2: // release
					ref := pick()
					want := m.check(ref)
					freed, err := p.Release(ref)
					if want != nil {
						require.ErrorIs(t, err, want, "step %d release %v", step, ref)
						require.False(t, freed)
						break
					}
					require.NoError(t, err, "step %d", step)
					s := &m.slots[ref.Slot()]
					s.RefCount--
					require.Equal(t, s.RefCount == 0, freed, "step %d", step)
					if s.RefCount == 0 {
						*s = SlotState{Gen: parallax.NextGen(s.Gen)}
						m.inUse--
					}
				case 3: // validate
					ref := pick()
					if want := m.check(ref); want != nil {
						require.ErrorIs(t, p.Validate(ref), want, "step %d validate %v", step, ref)
					} else {
						require.NoError(t, p.Validate(ref), "step %d", step)
					}
				}
				for i := range count {
					got, err := p.Slot(i)
					require.NoError(t, err)
					require.Equal(t, m.slots[i], got, "step %d slot %d", step, i)
				}
				require.Equal(t, Stats{ID: id, ChunkSize: 64, Count: count, InUse: m.inUse,
					HighWater: m.hw, FailedLoans: m.failed, Loans: m.lent}, p.Stats(), "step %d", step)
				a := p.Audit()
				require.Zero(t, a.LostFree+a.FalseFree+a.Corrupt, "step %d: %v", step, a)
			}
		})
	}
}
