package ringbuf_test

import (
	"encoding/binary"
	"errors"
	"fmt"
	"sync"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/parallax-ipc/parallax"
	"github.com/parallax-ipc/parallax/internal/testutil"
	"github.com/parallax-ipc/parallax/ringbuf"
)

func testDesc(dataCap, retCap uint32, p ringbuf.Policy) ringbuf.ConnDesc {
	return ringbuf.ConnDesc{
		ConnID: 11, PubID: 22, SubID: 33, Policy: p,
		DataCap: dataCap, ReturnCap: retCap, MaxHeld: 4, Bound: min(dataCap+4, retCap),
	}
}

// newConn formats a connection segment in aligned heap memory and returns
// it with its memory.
func newConn(t testing.TB, d ringbuf.ConnDesc) (*ringbuf.Conn, []byte) {
	t.Helper()
	size := ringbuf.ConnSize(int(d.DataCap), int(d.ReturnCap))
	mem := ringbuf.BytesOf(make([]uint64, size/8))
	c, err := ringbuf.FormatConn(mem, d)
	require.NoError(t, err)
	return c, mem
}

// TestConnLayout pins the connection segment ABI: header field offsets,
// region offsets and sizes (design §1.4).
func TestConnLayout(t *testing.T) {
	t.Parallel()
	want := map[string]int{
		"magic": 0, "version": 8, "policy": 12, "conn id": 16, "pub id": 20, "sub id": 24,
		"max held": 28, "data cap": 32, "return cap": 36, "bound": 40, "reserved44": 44,
		"data ring off": 48, "return ring off": 56, "data wake off": 64, "return wake off": 72,
		"size": 80, "reserved": 88,
	}
	require.Equal(t, want, ringbuf.ConnHeaderOffsets)
	require.Equal(t, 128, ringbuf.ConnHeaderSize)
	require.Equal(t, uint64(0x314e4e4f43584c50), ringbuf.ConnMagic)
	var m [8]byte
	binary.LittleEndian.PutUint64(m[:], ringbuf.ConnMagic)
	require.Equal(t, "PLXCONN1", string(m[:]))

	for _, c := range []struct {
		dataCap, retCap                    int
		dataWake, retWake, data, ret, size int
	}{
		// The design's example: capacity 256, bound 272 → return ring 512: 8 KiB.
		{256, 512, 128, 256, 384, 384 + 512 + 8*256, 8192},
		{64, 128, 128, 256, 384, 384 + 512 + 8*64, 4096},
		// Small data rings: the return ring still starts on a 128-byte line.
		{1, 1, 128, 256, 384, 384 + 640, 4096},
		{4, 8, 128, 256, 384, 384 + 640, 4096},
		{1024, 2048, 128, 256, 384, 384 + 512 + 8*1024, 28672},
	} {
		dw, rw, dr, rr := ringbuf.ConnRegions(c.dataCap, c.retCap)
		name := fmt.Sprintf("caps %d/%d", c.dataCap, c.retCap)
		require.Equal(t, []int{c.dataWake, c.retWake, c.data, c.ret}, []int{dw, rw, dr, rr}, name)
		require.Equal(t, c.size, ringbuf.ConnSize(c.dataCap, c.retCap), name)
		require.Zero(t, rr%128, name)
		require.GreaterOrEqual(t, c.size, rr+ringbuf.Size(c.retCap), name)
	}

	// The formatted header says what the layout says, in the bytes.
	d := testDesc(256, 512, ringbuf.DiscardOldest)
	_, mem := newConn(t, d)
	le := binary.LittleEndian
	require.Equal(t, ringbuf.ConnMagic, le.Uint64(mem[0:]))
	require.Equal(t, uint32(ringbuf.LayoutVersion), le.Uint32(mem[8:]))
	require.Equal(t, uint32(ringbuf.DiscardOldest), le.Uint32(mem[12:]))
	require.Equal(t, []uint32{11, 22, 33, 4, 256, 512, 260}, []uint32{
		le.Uint32(mem[16:]), le.Uint32(mem[20:]), le.Uint32(mem[24:]), le.Uint32(mem[28:]),
		le.Uint32(mem[32:]), le.Uint32(mem[36:]), le.Uint32(mem[40:]),
	})
	require.Equal(t, []uint64{384, 384 + 512 + 8*256, 128, 256, 8192}, []uint64{
		le.Uint64(mem[48:]), le.Uint64(mem[56:]), le.Uint64(mem[64:]), le.Uint64(mem[72:]), le.Uint64(mem[80:]),
	})
}

// TestConnRoundTrip: a formatted segment attaches from both ends; refs flow
// publisher → subscriber on the data ring and back on the return ring, and
// each end's notifier is the other end's.
func TestConnRoundTrip(t *testing.T) {
	t.Parallel()
	for _, p := range []ringbuf.Policy{ringbuf.DiscardOldest, ringbuf.BlockProducer} {
		d := testDesc(8, 16, p)
		router, mem := newConn(t, d)
		pub, err := ringbuf.AttachConn(mem, d)
		require.NoError(t, err)
		sub, err := ringbuf.AttachConn(mem, d)
		require.NoError(t, err)
		require.Equal(t, d, sub.Desc())
		require.Equal(t, router.Size(), pub.Size())
		require.Equal(t, p, pub.DataRing().Policy())
		require.Equal(t, ringbuf.Reject, pub.ReturnRing().Policy())
		require.Equal(t, 8, sub.DataRing().Cap())
		require.Equal(t, 16, sub.ReturnRing().Cap())

		for i := 1; i <= 8; i++ {
			_, err := pub.DataRing().TryPush(ref(i))
			require.NoError(t, err)
		}
		require.NoError(t, pub.DataWake().Notify())
		for i := 1; i <= 8; i++ {
			v, err := sub.DataRing().TryPop()
			require.NoError(t, err)
			require.Equal(t, ref(i), v)
			_, err = sub.ReturnRing().TryPush(v)
			require.NoError(t, err)
		}
		require.NoError(t, sub.ReturnWake().Notify())
		got := make([]parallax.ChunkRef, 32)
		n, err := pub.PopBatch(got)
		require.NoError(t, err)
		require.Equal(t, 8, n)
		for i := range n {
			require.Equal(t, ref(i+1), got[i])
		}
		n, err = pub.PopBatch(got)
		require.NoError(t, err)
		require.Zero(t, n)
	}
}

// TestConnFormatRejects: descriptors FormatConn cannot lay out.
func TestConnFormatRejects(t *testing.T) {
	t.Parallel()
	good := testDesc(8, 16, ringbuf.BlockProducer)
	mem := ringbuf.BytesOf(make([]uint64, ringbuf.ConnSize(64, 64)/8))
	for name, mut := range map[string]func(*ringbuf.ConnDesc){
		"reject data policy": func(d *ringbuf.ConnDesc) { d.Policy = ringbuf.Reject },
		"zero policy":        func(d *ringbuf.ConnDesc) { d.Policy = 0 },
		"data cap 0":         func(d *ringbuf.ConnDesc) { d.DataCap = 0 },
		"data cap 3":         func(d *ringbuf.ConnDesc) { d.DataCap = 3 },
		"return cap 12":      func(d *ringbuf.ConnDesc) { d.ReturnCap = 12 },
		"bound 0":            func(d *ringbuf.ConnDesc) { d.Bound = 0 },
		"bound > return cap": func(d *ringbuf.ConnDesc) { d.Bound = 17 },
	} {
		d := good
		mut(&d)
		_, err := ringbuf.FormatConn(mem, d)
		require.ErrorIs(t, err, ringbuf.ErrInvalidArgument, name)
		_, err = ringbuf.AttachConn(mem, d)
		require.ErrorIs(t, err, ringbuf.ErrInvalidArgument, name)
	}
	_, err := ringbuf.FormatConn(mem[:ringbuf.ConnSize(8, 16)-8], good)
	require.ErrorIs(t, err, ringbuf.ErrInvalidArgument, "short region")
	_, err = ringbuf.FormatConn(mem[4:], good)
	require.ErrorIs(t, err, ringbuf.ErrInvalidArgument, "unaligned region")
}

// TestConnAttachMismatch: every header field that disagrees with the
// descriptor, a descriptor that disagrees with the header, and a sub-ring
// or notifier header that disagrees, make AttachConn fail with ErrCorrupt
// naming the field.
func TestConnAttachMismatch(t *testing.T) {
	t.Parallel()
	d := testDesc(8, 16, ringbuf.BlockProducer)
	_, pristine := newConn(t, d)
	dw, rw, dr, rr := ringbuf.ConnRegions(8, 16)
	for name, c := range map[string]struct {
		off  int
		want string
	}{
		"magic":           {0, "magic"},
		"version":         {8, "layout version"},
		"policy":          {12, "policy"},
		"conn id":         {16, "connection id"},
		"pub id":          {20, "publisher id"},
		"sub id":          {24, "subscriber id"},
		"max held":        {28, "max held"},
		"data cap":        {32, "data capacity"},
		"return cap":      {36, "return capacity"},
		"bound":           {40, "bound"},
		"reserved 44":     {44, "reserved header word"},
		"data ring off":   {48, "data ring offset"},
		"return ring off": {56, "return ring offset"},
		"data wake off":   {64, "data wake offset"},
		"return wake off": {72, "return wake offset"},
		"size":            {80, "size"},
		"reserved 100":    {100, "reserved header byte 100"},
		"data wake magic": {dw, "data wake"},
		"ret wake magic":  {rw, "return wake"},
		"data ring magic": {dr, "data ring"},
		"ret ring magic":  {rr, "return ring"},
		"data ring cap":   {dr + 16, "data ring"},
		"ret ring policy": {rr + 12, "return ring"},
	} {
		mem := ringbuf.BytesOf(make([]uint64, len(pristine)/8))
		copy(mem, pristine)
		mem[c.off] ^= 0x01
		_, err := ringbuf.AttachConn(mem, d)
		require.ErrorIs(t, err, parallax.ErrCorrupt, name)
		require.ErrorContains(t, err, c.want, name)
	}
	for name, mut := range map[string]func(*ringbuf.ConnDesc){
		"conn id":    func(x *ringbuf.ConnDesc) { x.ConnID++ },
		"pub id":     func(x *ringbuf.ConnDesc) { x.PubID++ },
		"sub id":     func(x *ringbuf.ConnDesc) { x.SubID++ },
		"policy":     func(x *ringbuf.ConnDesc) { x.Policy = ringbuf.DiscardOldest },
		"max held":   func(x *ringbuf.ConnDesc) { x.MaxHeld++ },
		"bound":      func(x *ringbuf.ConnDesc) { x.Bound-- },
		"data cap":   func(x *ringbuf.ConnDesc) { x.DataCap = 4 },
		"return cap": func(x *ringbuf.ConnDesc) { x.ReturnCap = 32 },
	} {
		x := d
		mut(&x)
		_, err := ringbuf.AttachConn(pristine, x)
		require.ErrorIs(t, err, parallax.ErrCorrupt, name)
	}
	_, err := ringbuf.AttachConn(pristine[:len(pristine)-8], d)
	require.ErrorIs(t, err, parallax.ErrCorrupt, "short region")
}

// TestConnAttachCachesSizes: a peer rewriting the header or a ring's
// capacity after attach changes nothing the Conn uses.
func TestConnAttachCachesSizes(t *testing.T) {
	t.Parallel()
	d := testDesc(4, 8, ringbuf.BlockProducer)
	_, mem := newConn(t, d)
	c, err := ringbuf.AttachConn(mem, d)
	require.NoError(t, err)
	_, _, dr, rr := ringbuf.ConnRegions(4, 8)
	binary.LittleEndian.PutUint32(mem[32:], 1<<20)
	binary.LittleEndian.PutUint32(mem[dr+16:], 1<<20)
	binary.LittleEndian.PutUint32(mem[rr+16:], 1<<20)
	require.Equal(t, 4, c.DataRing().Cap())
	require.Equal(t, 8, c.ReturnRing().Cap())
	for i := 1; i <= 4; i++ {
		_, err := c.DataRing().TryPush(ref(i))
		require.NoError(t, err)
	}
	_, err = c.DataRing().TryPush(ref(5))
	require.ErrorIs(t, err, ringbuf.ErrFull)
}

// TestConnCorruptIndices: impossible indices in one ring of a connection
// give ErrCorruptRing on that ring and leave the other ring working.
func TestConnCorruptIndices(t *testing.T) {
	t.Parallel()
	const dataCap, retCap = 8, 16
	_, _, dr, rr := ringbuf.ConnRegions(dataCap, retCap)
	for _, corruptData := range []bool{true, false} {
		for name, word := range map[string]struct {
			off func(ringOff int) int
			val func(tail uint32) uint64
		}{
			"tail far ahead": {func(o int) int { return o + ringbuf.OffTail }, func(t uint32) uint64 { return uint64(t + 1000) }},
			"tail high bits": {func(o int) int { return o + ringbuf.OffTail }, func(t uint32) uint64 { return uint64(t) | 1<<40 }},
			"head past tail": {func(o int) int { return o + ringbuf.OffHead }, func(t uint32) uint64 { return uint64(t + 3) }},
		} {
			what := fmt.Sprintf("%s in the %s ring", name, map[bool]string{true: "data", false: "return"}[corruptData])
			d := testDesc(dataCap, retCap, ringbuf.DiscardOldest)
			_, mem := newConn(t, d)
			pub, err := ringbuf.AttachConn(mem, d)
			require.NoError(t, err)
			sub, err := ringbuf.AttachConn(mem, d)
			require.NoError(t, err)
			for i := 1; i <= 3; i++ {
				_, err := pub.DataRing().TryPush(ref(i))
				require.NoError(t, err)
				_, err = sub.ReturnRing().TryPush(ref(100 + i))
				require.NoError(t, err)
			}
			off, bad := rr, pub.ReturnRing()
			if corruptData {
				off, bad = dr, pub.DataRing()
			}
			ringbuf.StoreWord(mem, word.off(off), word.val(bad.Tail()))

			dataErr := func() error { _, err := sub.DataRing().TryPop(); return err }()
			buf := make([]parallax.ChunkRef, retCap)
			n, retErr := pub.PopBatch(buf)
			if corruptData {
				requireCorrupt(t, dataErr, what+": data pop")
				require.NoError(t, retErr, what+": return drain")
				require.Equal(t, 3, n, what)
				require.Equal(t, []parallax.ChunkRef{ref(101), ref(102), ref(103)}, buf[:n], what)
				_, err = sub.ReturnRing().TryPush(ref(104))
				require.NoError(t, err, what+": return push")
			} else {
				require.NoError(t, dataErr, what+": data pop")
				requireCorrupt(t, retErr, what+": return drain")
				require.Zero(t, n, what)
				v, err := sub.DataRing().TryPop()
				require.NoError(t, err, what)
				require.Equal(t, ref(2), v, what)
				_, err = pub.DataRing().TryPush(ref(4))
				require.NoError(t, err, what+": data push")
			}
		}
	}
}

// retModel is the slice model of a Reject ring.
type retModel struct {
	cap  int
	q    []parallax.ChunkRef
	pops uint32
}

func (m *retModel) push(v parallax.ChunkRef) error {
	if len(m.q) == m.cap {
		return ringbuf.ErrFull
	}
	m.q = append(m.q, v)
	return nil
}

func (m *retModel) popN(n int) []parallax.ChunkRef {
	n = min(n, len(m.q))
	out := append([]parallax.ChunkRef(nil), m.q[:n]...)
	m.q = m.q[n:]
	m.pops += uint32(n)
	return out
}

// TestConnReturnRingModel runs random pushes (subscriber), single pops and
// batch drains (publisher) on a connection's return ring and on a slice
// model: a push on a full ring fails and changes nothing, a drain takes the
// oldest min(len(dst), len) entries in order, nothing is ever dropped.
func TestConnReturnRingModel(t *testing.T) {
	t.Parallel()
	rng := testutil.Rand(t)
	runs, steps := 200, 2000
	if testing.Short() {
		runs, steps = 30, 500
	}
	for run := range runs {
		retCap := uint32(1) << rng.IntN(7)
		d := testDesc(4, retCap, ringbuf.BlockProducer)
		d.Bound = retCap
		c, _ := newConn(t, d)
		r := c.ReturnRing()
		m := &retModel{cap: int(retCap)}
		next := 1
		pushBias := 20 + rng.IntN(60)
		dst := make([]parallax.ChunkRef, 2*retCap+1)
		for step := range steps {
			where := fmt.Sprintf("run %d step %d (return cap %d)", run, step, retCap)
			switch op := rng.IntN(100); {
			case op < pushBias:
				v := ref(next)
				next++
				d, err := r.TryPush(v)
				werr := m.push(v)
				if !errors.Is(err, werr) || (err == nil) != (werr == nil) || d != parallax.NilRef {
					t.Fatalf("%s: push = (%v, %v), want (nil, %v)", where, d, err, werr)
				}
			case op < pushBias+(100-pushBias)/2:
				v, err := r.TryPop()
				want := m.popN(1)
				if len(want) == 0 {
					if err != ringbuf.ErrEmpty {
						t.Fatalf("%s: pop = (%v, %v), want ErrEmpty", where, v, err)
					}
				} else if err != nil || v != want[0] {
					t.Fatalf("%s: pop = (%v, %v), want %v", where, v, err, want[0])
				}
			default:
				k := rng.IntN(len(dst) + 1)
				n, err := c.PopBatch(dst[:k])
				want := m.popN(k)
				if err != nil || n != len(want) {
					t.Fatalf("%s: PopBatch(%d) = (%d, %v), want %d", where, k, n, err, len(want))
				}
				for i := range n {
					if dst[i] != want[i] {
						t.Fatalf("%s: PopBatch entry %d = %v, want %v", where, i, dst[i], want[i])
					}
				}
			}
			if r.Len() != len(m.q) || r.Dropped() != 0 || r.Head().Pops() != m.pops {
				t.Fatalf("%s: len/dropped/pops = %d/%d/%d, want %d/0/%d", where, r.Len(), r.Dropped(), r.Head().Pops(), len(m.q), m.pops)
			}
		}
	}
}

// TestPopBatchAgainstDiscards: a producer goroutine pushing into a full
// DiscardOldest ring races a consumer draining with PopBatch; every ref ends
// up exactly once on one side (popped or discarded), in order on each.
func TestPopBatchAgainstDiscards(t *testing.T) {
	t.Parallel()
	n := 200_000
	if testing.Short() {
		n = 20_000
	}
	r := newRing(t, 8, ringbuf.DiscardOldest)
	var discarded []parallax.ChunkRef
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		for i := 1; i <= n; i++ {
			d, err := r.TryPush(ref(i))
			if err != nil {
				panic(err)
			}
			if d != parallax.NilRef {
				discarded = append(discarded, d)
			}
		}
	}()
	var popped []parallax.ChunkRef
	buf := make([]parallax.ChunkRef, 5)
	done := make(chan struct{})
	go func() { wg.Wait(); close(done) }()
	for finished := false; ; {
		select {
		case <-done:
			finished = true
		default:
		}
		k, err := r.PopBatch(buf)
		require.NoError(t, err)
		popped = append(popped, buf[:k]...)
		if finished && r.Len() == 0 {
			break
		}
	}
	require.Equal(t, n, len(popped)+len(discarded))
	seen := make([]bool, n+1)
	for _, side := range [][]parallax.ChunkRef{popped, discarded} {
		for i, v := range side {
			require.False(t, seen[v], "ref %v taken twice", v)
			seen[v] = true
			if i > 0 {
				require.Less(t, side[i-1], v, "out of order")
			}
		}
	}
}

// FuzzAttachConn feeds arbitrary segment bytes (and descriptor fields) to
// AttachConn and, when it accepts them, runs both ends' operations: never a
// panic, never an out-of-range access, only errors.
func FuzzAttachConn(f *testing.F) {
	for _, c := range []struct {
		dataCap, retCap uint32
		p               ringbuf.Policy
	}{{1, 1, ringbuf.DiscardOldest}, {4, 8, ringbuf.BlockProducer}, {16, 32, ringbuf.DiscardOldest}} {
		d := testDesc(c.dataCap, c.retCap, c.p)
		_, mem := newConn(f, d)
		f.Add(append([]byte(nil), mem...), c.dataCap, c.retCap, uint32(c.p), d.Bound)
	}
	f.Add([]byte{}, uint32(1), uint32(1), uint32(1), uint32(1))
	f.Fuzz(func(t *testing.T, data []byte, dataCap, retCap, policy, bound uint32) {
		d := testDesc(1, 1, ringbuf.Policy(policy))
		d.DataCap, d.ReturnCap, d.Bound = dataCap, retCap, bound
		if dataCap > 1<<12 || retCap > 1<<12 {
			return // keep ConnSize small; larger caps are the same code
		}
		words := make([]uint64, (len(data)+15)/8)
		mem := ringbuf.BytesOf(words)[:len(data)]
		copy(mem, data)
		if len(mem) > 1 {
			if _, err := ringbuf.AttachConn(mem[1:], d); err == nil {
				t.Fatal("AttachConn accepted an unaligned region")
			}
		}
		c, err := ringbuf.AttachConn(mem, d)
		if err != nil {
			if !errors.Is(err, parallax.ErrCorrupt) && !errors.Is(err, ringbuf.ErrInvalidArgument) {
				t.Fatalf("AttachConn error %v wraps neither ErrCorrupt nor ErrInvalidArgument", err)
			}
			return
		}
		if c.DataRing().Cap() != int(dataCap) || c.ReturnRing().Cap() != int(retCap) {
			t.Fatalf("attached caps %d/%d, descriptor %d/%d", c.DataRing().Cap(), c.ReturnRing().Cap(), dataCap, retCap)
		}
		_ = c.DataWake().Notify()
		_ = c.ReturnWake().Notify()
		for _, r := range []*ringbuf.Ring{c.DataRing(), c.ReturnRing()} {
			for i := range 2*r.Cap() + 2 {
				if _, err := r.TryPush(parallax.ChunkRef(i + 1)); err != nil {
					break
				}
			}
		}
		for range 2*c.DataRing().Cap() + 2 {
			if _, err := c.DataRing().TryPop(); err != nil {
				break
			}
		}
		buf := make([]parallax.ChunkRef, 2*retCap+1)
		n, err := c.PopBatch(buf)
		if err != nil && !errors.Is(err, ringbuf.ErrCorruptRing) {
			t.Fatalf("PopBatch: unexpected error %v", err)
		}
		if n < 0 || n > int(retCap) {
			t.Fatalf("PopBatch popped %d from a ring of capacity %d", n, retCap)
		}
	})
}
