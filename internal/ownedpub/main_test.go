package ownedpub_test

import (
	"encoding/binary"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/parallax-ipc/parallax"
	"github.com/parallax-ipc/parallax/dataseg"
	"github.com/parallax-ipc/parallax/internal/ownedpub"
	"github.com/parallax-ipc/parallax/internal/testutil"
	"github.com/parallax-ipc/parallax/ringbuf"
)

func TestMain(m *testing.M) { testutil.Main(m) }

// rig is a publisher engine over one heap data segment, with a read-only
// view of the same memory for test consumers.
type rig struct {
	e   *ownedpub.Engine
	ro  *dataseg.Segment
	mem []byte
}

func newRig(t testing.TB, opts ownedpub.Options, chunkSize, count uint32) *rig {
	t.Helper()
	d := dataseg.Desc{PubID: 1, ChunkSize: chunkSize, Count: count, PageSize: 4096}
	mem := make([]byte, dataseg.Size(d))
	w, err := dataseg.Format(mem, d)
	require.NoError(t, err)
	ro, err := dataseg.Attach(mem, d, true)
	require.NoError(t, err)
	e := ownedpub.New(opts)
	require.NoError(t, e.AddSegment(w))
	return &rig{e: e, ro: ro, mem: mem}
}

// consumer is the subscriber side of one connection: its own attachment of
// the connection segment (as another process would have), popping from
// the data ring and pushing returns.
type consumer struct {
	t   testing.TB
	mem []byte
	c   *ringbuf.Conn
	ro  *dataseg.Segment
}

// conn formats a connection segment (as the router would), adds it to the
// engine and returns the engine's Conn and a consumer on the same memory.
// The return ring has the smallest power-of-two capacity ≥ bound.
func (r *rig) conn(t testing.TB, id uint32, policy ringbuf.Policy, dataCap, bound, history int) (*ownedpub.Conn, *consumer) {
	t.Helper()
	ret := 1
	for ret < bound {
		ret *= 2
	}
	d := ringbuf.ConnDesc{ConnID: id, PubID: 1, SubID: 100 + id, Policy: policy,
		DataCap: uint32(dataCap), ReturnCap: uint32(ret), MaxHeld: 1, Bound: uint32(bound)}
	mem := make([]byte, ringbuf.ConnSize(dataCap, ret))
	_, err := ringbuf.FormatConn(mem, d)
	require.NoError(t, err)
	pubSide, err := ringbuf.AttachConn(mem, d)
	require.NoError(t, err)
	subSide, err := ringbuf.AttachConn(mem, d)
	require.NoError(t, err)
	c, err := r.e.AddConn(pubSide, bound, policy, history)
	require.NoError(t, err)
	return c, &consumer{t: t, mem: mem, c: subSide, ro: r.ro}
}

// pop takes the next ref, validates it against the read-only segment and
// returns it with its payload and header; ok is false on an empty ring.
func (s *consumer) pop() (ref parallax.ChunkRef, buf []byte, m dataseg.Meta, ok bool) {
	s.t.Helper()
	ref, err := s.c.DataRing().TryPop()
	if err == ringbuf.ErrEmpty {
		return 0, nil, dataseg.Meta{}, false
	}
	require.NoError(s.t, err)
	require.NotZero(s.t, ref.Gen())
	buf, m, err = s.ro.View(ref.Slot())
	require.NoError(s.t, err)
	return ref, buf, m, true
}

// mustPop pops one message and checks that its payload carries its seq.
func (s *consumer) mustPop() (parallax.ChunkRef, uint64) {
	s.t.Helper()
	ref, buf, m, ok := s.pop()
	require.True(s.t, ok, "data ring empty")
	require.NotZero(s.t, m.Seq)
	require.Equal(s.t, m.UserSeq, binary.LittleEndian.Uint64(buf), "payload of %v", ref)
	return ref, m.UserSeq
}

// give pushes ref into the return ring, as a subscriber's release does.
func (s *consumer) give(ref parallax.ChunkRef) {
	s.t.Helper()
	_, err := s.c.ReturnRing().TryPush(ref)
	require.NoError(s.t, err)
	require.NoError(s.t, s.c.ReturnWake().Notify())
}

// popAll pops and returns everything queued; it returns the seqs.
func (s *consumer) popAll() []uint64 {
	var seqs []uint64
	for {
		if s.c.DataRing().Len() == 0 {
			return seqs
		}
		ref, seq := s.mustPop()
		seqs = append(seqs, seq)
		s.give(ref)
	}
}

// forgeOldest overwrites the data ring's oldest entry with v, as a hostile
// subscriber can (it maps the connection read-write).
func (s *consumer) forgeOldest(v parallax.ChunkRef) {
	r := s.c.DataRing()
	slot := int(r.Head().Pos()) & (r.Cap() - 1)
	// The data ring follows the connection header and two notifiers.
	dataRing := ringbuf.ConnHeaderSize + 2*ringbuf.NotifierSize
	binary.LittleEndian.PutUint64(s.mem[dataRing+ringbuf.HeaderSize+8*slot:], uint64(v))
}

// publish loans n bytes, writes seq into the first 8 and publishes.
func (r *rig) publish(t testing.TB, n int, seq uint64) error {
	t.Helper()
	l, err := r.e.Loan(n)
	require.NoError(t, err)
	binary.LittleEndian.PutUint64(l.Bytes(), seq)
	l.SetMeta(dataseg.Meta{UserSeq: seq})
	return r.e.Publish(&l)
}

func putSeq(b []byte, seq uint64)     { binary.LittleEndian.PutUint64(b, seq) }
func metaSeq(seq uint64) dataseg.Meta { return dataseg.Meta{UserSeq: seq} }
