package ownedsub_test

import (
	"encoding/binary"
	"hash/crc32"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/parallax-ipc/parallax/dataseg"
	"github.com/parallax-ipc/parallax/internal/ownedpub"
	"github.com/parallax-ipc/parallax/internal/ownedsub"
	"github.com/parallax-ipc/parallax/internal/testutil"
	"github.com/parallax-ipc/parallax/ringbuf"
)

func TestMain(m *testing.M) { testutil.Main(m) }

// pub is a publisher: an ownedpub engine over one heap data segment, and a
// read-only attachment of the same memory, as its subscribers map it.
type pub struct {
	e  *ownedpub.Engine
	id uint32
	d  dataseg.Desc
	ro *dataseg.Segment
}

func newPub(t testing.TB, id uint32, opts ownedpub.Options, chunkSize, count uint32) *pub {
	t.Helper()
	d := dataseg.Desc{PubID: id, ChunkSize: chunkSize, Count: count, PageSize: 4096}
	mem := make([]byte, dataseg.Size(d))
	w, err := dataseg.Format(mem, d)
	require.NoError(t, err)
	ro, err := dataseg.Attach(mem, d, true)
	require.NoError(t, err)
	e := ownedpub.New(opts)
	require.NoError(t, e.AddSegment(w))
	return &pub{e: e, id: id, d: d, ro: ro}
}

// link is one connection: the publisher's and the subscriber's sides,
// each its own attachment of the same segment memory, as two processes
// have.
type link struct {
	mem     []byte
	pubRC   *ringbuf.Conn // the publisher process's view
	pc      *ownedpub.Conn
	sc      *ownedsub.Conn
	bound   int
	dataCap int
}

// connect formats a connection segment (as the router does) between p and
// the subscriber engine s, adds it to both engines and adds p's segment to
// the subscriber's side. bound = dataCap + maxHeld (design §1.3).
func connect(t testing.TB, p *pub, s *ownedsub.Engine, id uint32, policy ringbuf.Policy, dataCap, maxHeld, history int) *link {
	t.Helper()
	l := connectRaw(t, p.id, s, id, policy, dataCap, maxHeld, 4)
	var err error
	l.pc, err = p.e.AddConn(l.pubRC, l.bound, policy, history)
	require.NoError(t, err)
	require.NoError(t, s.AddSegment(l.sc, p.ro))
	return l
}

// connectRaw makes a connection segment and adds its subscriber side to s
// (with maxSegments), but no publisher engine: the test plays the
// publisher through pubRC.
func connectRaw(t testing.TB, pubID uint32, s *ownedsub.Engine, id uint32, policy ringbuf.Policy, dataCap, maxHeld, maxSegments int) *link {
	t.Helper()
	bound := dataCap + maxHeld
	ret := 1
	for ret < bound {
		ret *= 2
	}
	d := ringbuf.ConnDesc{ConnID: id, PubID: pubID, SubID: 100, Policy: policy,
		DataCap: uint32(dataCap), ReturnCap: uint32(ret), MaxHeld: uint32(maxHeld), Bound: uint32(bound)}
	mem := make([]byte, ringbuf.ConnSize(dataCap, ret))
	_, err := ringbuf.FormatConn(mem, d)
	require.NoError(t, err)
	pubRC, err := ringbuf.AttachConn(mem, d)
	require.NoError(t, err)
	subRC, err := ringbuf.AttachConn(mem, d)
	require.NoError(t, err)
	sc, err := s.AddConn(subRC, maxSegments)
	require.NoError(t, err)
	return &link{mem: mem, pubRC: pubRC, sc: sc, bound: bound, dataCap: dataCap}
}

// msg fills b with a message: seq, the publisher id, a pattern, and a
// CRC-32 of everything before it in the last 4 bytes.
func msg(b []byte, pubID uint32, seq uint64) {
	binary.LittleEndian.PutUint64(b, seq)
	binary.LittleEndian.PutUint32(b[8:], pubID)
	for i := 12; i < len(b)-4; i++ {
		b[i] = byte(seq) + byte(i)
	}
	binary.LittleEndian.PutUint32(b[len(b)-4:], crc32.ChecksumIEEE(b[:len(b)-4]))
}

// check verifies a message and returns its publisher id and seq.
func check(t testing.TB, b []byte) (uint32, uint64) {
	t.Helper()
	require.GreaterOrEqual(t, len(b), 16)
	require.Equal(t, crc32.ChecksumIEEE(b[:len(b)-4]), binary.LittleEndian.Uint32(b[len(b)-4:]), "crc")
	return binary.LittleEndian.Uint32(b[8:]), binary.LittleEndian.Uint64(b)
}

// publish loans n bytes, writes message seq and publishes it.
func (p *pub) publish(t testing.TB, n int, seq uint64) error {
	t.Helper()
	l, err := p.e.Loan(n)
	require.NoError(t, err)
	msg(l.Bytes(), p.id, seq)
	l.SetMeta(dataseg.Meta{UserSeq: seq})
	return p.e.Publish(&l)
}
