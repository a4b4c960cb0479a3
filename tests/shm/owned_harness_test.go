package shm_test

// The owned path of issue 12 (docs/design/memory-ownership.md), without a
// router: the test process plays the router (it creates every memfd, mode
// 0600 and sealed, formats it and hands out fds) and, in the same process
// but through fds of its own, the publisher. Subscribers are re-executed
// children. Step 4 of the design's landing plan.

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/parallax-ipc/parallax"
	"github.com/parallax-ipc/parallax/dataseg"
	"github.com/parallax-ipc/parallax/internal/ownedsub"
	"github.com/parallax-ipc/parallax/internal/owner"
	"github.com/parallax-ipc/parallax/ringbuf"
	"github.com/parallax-ipc/parallax/segment"
)

// ownedConfig is what an owned-path child needs, passed as one JSON
// argument: the descriptors the router would send it, and its behaviour.
type ownedConfig struct {
	Data     dataseg.Desc     // publisher's data segment (fd 3, read-only)
	Conn     ringbuf.ConnDesc // connection (fd 4)
	EchoData dataseg.Desc     // echo only: the child's own data segment (fd 5, read-write)
	EchoConn ringbuf.ConnDesc // echo only: connection back to the parent (fd 6)
	Mode     string
	Payload  int
	Hostile  bool
	Single   bool // engine-echo: ownedpub.Options.SingleGoroutine
}

func (c ownedConfig) args() []string {
	b, err := json.Marshal(c)
	if err != nil {
		panic(err)
	}
	return []string{string(b)}
}

func parseOwned(args []string) (ownedConfig, error) {
	var c ownedConfig
	if len(args) != 1 {
		return c, fmt.Errorf("owned child: %d arguments, want 1", len(args))
	}
	if err := json.Unmarshal([]byte(args[0]), &c); err != nil {
		return c, fmt.Errorf("owned child: parse config: %w", err)
	}
	return c, nil
}

// ownedSizes sizes a publisher with one connection as design §1.3 does:
// bound = queue capacity + MaxHeld, return ring = pow2 ≥ bound, chunks =
// MaxLoans + bound per connection.
func ownedSizes(pubID, connID uint32, payload, dataCap, conns int, policy ringbuf.Policy) (dataseg.Desc, ringbuf.ConnDesc) {
	return ownedSizesHeld(pubID, connID, payload, dataCap, conns, 1, policy)
}

// ownedSizesHeld is ownedSizes for a subscriber that may hold maxHeld
// samples (the design's default is 16).
func ownedSizesHeld(pubID, connID uint32, payload, dataCap, conns, maxHeld int, policy ringbuf.Policy) (dataseg.Desc, ringbuf.ConnDesc) {
	const maxLoans = 1
	bound := dataCap + maxHeld
	ret := 1
	for ret < bound {
		ret *= 2
	}
	d := dataseg.Desc{
		PubID: pubID, ChunkSize: uint32(alignUp(payload, dataseg.ChunkAlign)),
		Count: uint32(maxLoans + conns*bound), PageSize: uint32(os.Getpagesize()),
	}
	c := ringbuf.ConnDesc{
		ConnID: connID, PubID: pubID, SubID: 1000 + connID, Policy: policy,
		DataCap: uint32(dataCap), ReturnCap: uint32(ret), MaxHeld: uint32(maxHeld), Bound: uint32(bound),
	}
	return d, c
}

// routerSeg creates a memfd as the router does: sealed, mode 0600, laid out
// by format. It skips where memfds are unsupported and closes at cleanup.
func routerSeg(t testing.TB, name string, size int, format func([]byte) error) *segment.Mapped {
	t.Helper()
	m, err := segment.NewMemfd(name, size, segment.MemfdOptions{})
	if errors.Is(err, parallax.ErrNotSupported) {
		t.Skipf("memfd segments not supported here: %v", err)
	}
	require.NoError(t, err)
	t.Cleanup(func() { require.NoError(t, m.Close()) })
	require.NoError(t, m.File().Chmod(0o600), "fchmod 0600")
	require.NoError(t, format(m.Bytes()))
	return m
}

func routerDataSeg(t testing.TB, d dataseg.Desc) *segment.Mapped {
	return routerSeg(t, fmt.Sprintf("plx-p%d.%d", d.PubID, d.Index), dataseg.Size(d), func(mem []byte) error {
		_, err := dataseg.Format(mem, d)
		return err
	})
}

func routerConnSeg(t testing.TB, c ringbuf.ConnDesc) *segment.Mapped {
	return routerSeg(t, fmt.Sprintf("plx-c%d", c.ConnID), ringbuf.ConnSize(int(c.DataCap), int(c.ReturnCap)), func(mem []byte) error {
		_, err := ringbuf.FormatConn(mem, c)
		return err
	})
}

// grant returns a new fd of m for a client: read-write (the publisher's own
// segment, a connection) or read-only (a subscriber's view of a data
// segment). The caller owns it.
func grant(t testing.TB, m *segment.Mapped, readOnly bool) *os.File {
	t.Helper()
	if readOnly {
		f, err := m.ReadOnlyFile()
		require.NoError(t, err)
		return f
	}
	f, err := os.OpenFile(fmt.Sprintf("/proc/self/fd/%d", m.File().Fd()), os.O_RDWR, 0)
	require.NoError(t, err)
	return f
}

// openSeg maps a granted fd as a client does: size and seals checked. It
// takes ownership of f.
func openSeg(f *os.File, size int, readOnly bool) (*segment.Mapped, error) {
	m, err := segment.Open(f, segment.OpenOptions{ExpectedSize: int64(size), RequireSeals: true, ReadOnly: readOnly})
	if err != nil {
		f.Close()
		return nil, err
	}
	return m, nil
}

// ownedPub is the publisher side: its data segment, its Tracker and its
// connections. Not safe for concurrent use (one goroutine publishes).
type ownedPub struct {
	mapped     *segment.Mapped
	seg        *dataseg.Segment
	tr         *owner.Tracker
	class      int
	conns      []*pubConn
	pat        []byte
	opts       ringbuf.WaitOptions
	batch      []parallax.ChunkRef
	sinceDrain int
	drainEvery int
	// strict makes every refused return check that it changed nothing;
	// violation is the first one that did.
	strict    bool
	violation error
	// to limits delivery: nil delivers every message on every live
	// connection.
	to func(pc *pubConn, seq uint64) bool
}

// pubConn is one connection of an ownedPub.
type pubConn struct {
	mapped *segment.Mapped
	c      *ringbuf.Conn
	ct     *owner.ConnTrack
	data   *ringbuf.Ring
	wake   *ringbuf.Notifier
	// err is the first error on this connection (a refused return, a
	// corrupt ring); the publisher stops delivering on it, as the router
	// would cut it.
	err error
}

// newOwnedPub attaches the publisher to its data segment (fd f).
func newOwnedPub(f *os.File, d dataseg.Desc, mode string, payload int) (_ *ownedPub, err error) {
	p := &ownedPub{opts: waitOptions(mode), pat: pattern(payload), tr: owner.New(owner.Config{MaxLoans: 1})}
	if p.mapped, err = openSeg(f, dataseg.Size(d), false); err != nil {
		return nil, fmt.Errorf("open data segment: %w", err)
	}
	defer func() {
		if err != nil {
			p.Close()
		}
	}()
	if p.seg, err = dataseg.Attach(p.mapped.Bytes(), d, false); err != nil {
		return nil, err
	}
	if p.class, err = p.tr.AddSegment(d.Index, d.ChunkSize, d.Count); err != nil {
		return nil, err
	}
	return p, nil
}

// addConn attaches connection fd f.
func (p *ownedPub) addConn(f *os.File, d ringbuf.ConnDesc) (_ *pubConn, err error) {
	pc := &pubConn{}
	if pc.mapped, err = openSeg(f, ringbuf.ConnSize(int(d.DataCap), int(d.ReturnCap)), false); err != nil {
		return nil, fmt.Errorf("open connection segment: %w", err)
	}
	if pc.c, err = ringbuf.AttachConn(pc.mapped.Bytes(), d); err != nil {
		pc.mapped.Close()
		return nil, err
	}
	if pc.ct, err = p.tr.AddConn(d.ConnID, int(d.Bound)); err != nil {
		pc.mapped.Close()
		return nil, err
	}
	pc.data, pc.wake = pc.c.DataRing(), pc.c.DataWake()
	p.conns = append(p.conns, pc)
	if n := int(d.ReturnCap); n > len(p.batch) {
		p.batch = make([]parallax.ChunkRef, n)
	}
	// Drain at least every 32 publishes and every quarter data ring (§2.3).
	p.drainEvery = 32
	for _, c := range p.conns {
		p.drainEvery = max(1, min(p.drainEvery, c.data.Cap()/4))
	}
	return pc, nil
}

// Close unmaps every segment. Idempotent.
func (p *ownedPub) Close() error {
	var errs []error
	for _, pc := range p.conns {
		errs = append(errs, pc.mapped.Close())
	}
	if p.mapped != nil {
		errs = append(errs, p.mapped.Close())
	}
	return errors.Join(errs...)
}

// fail records err as c's first error and stops deliveries on it.
func (p *ownedPub) fail(pc *pubConn, err error) {
	if pc.err == nil {
		pc.err = err
	}
	p.tr.CloseConn(pc.ct)
}

// send loans a chunk, writes the whole payload and its header, delivers it
// on every live connection, and drains returns every drainEvery sends.
func (p *ownedPub) send(seq uint64) error {
	idx, ref, err := p.tr.Loan(p.class)
	if errors.Is(err, parallax.ErrPoolExhausted) {
		p.drainAll()
		idx, ref, err = p.tr.Loan(p.class)
	}
	if err != nil {
		return err
	}
	slot := ref.Slot()
	writeMsg(p.seg.Chunk(slot)[:len(p.pat)], p.pat, seq)
	p.seg.SetMeta(slot, dataseg.Meta{Length: uint32(len(p.pat)), Seq: seq})
	for _, pc := range p.conns {
		if !pc.ct.Live() || (p.to != nil && !p.to(pc, seq)) {
			continue
		}
		if err := p.deliver(pc, idx, ref); err != nil {
			p.fail(pc, err)
		}
	}
	if err := p.tr.Published(idx); err != nil {
		return err
	}
	if p.sinceDrain++; p.sinceDrain >= p.drainEvery {
		p.sinceDrain = 0
		p.drainAll()
	}
	return nil
}

// deliver records chunk idx on pc and pushes its ref. At the bound it
// drains pc and, if still at the bound, waits for a return.
func (p *ownedPub) deliver(pc *pubConn, idx uint32, ref parallax.ChunkRef) error {
	for {
		err := p.tr.Deliver(pc.ct, idx)
		if err == nil {
			break
		}
		if err != owner.ErrBound {
			return err
		}
		if err := p.drain(pc); err != nil {
			return err
		}
		if err = p.tr.Deliver(pc.ct, idx); err == nil {
			break
		} else if err != owner.ErrBound {
			return err
		}
		ret := pc.c.ReturnRing()
		if err := pc.c.ReturnWake().Wait(context.Background(), func() bool { return ret.Len() > 0 }, p.opts); err != nil {
			return fmt.Errorf("wait for returns: %w", err)
		}
	}
	old, err := pc.data.Push(context.Background(), ref)
	if err != nil {
		return err
	}
	if old != parallax.NilRef {
		// Discard-oldest take-back: the value came from memory the
		// subscriber can write; validate it like a return (§2.5).
		if err := p.accept(pc, old); err != nil {
			return err
		}
	}
	return pc.wake.Notify()
}

// drainAll drains every connection that has not failed.
func (p *ownedPub) drainAll() {
	for _, pc := range p.conns {
		if pc.err == nil && !pc.ct.Gone() {
			if err := p.drain(pc); err != nil {
				p.fail(pc, err)
			}
		}
	}
}

// drain takes back what pc's subscriber returned: one batch, bounded by
// the return ring's capacity. A refused ref is an error for pc; the rest of
// the batch is still validated one by one.
func (p *ownedPub) drain(pc *pubConn) error {
	n, err := pc.c.PopBatch(p.batch)
	if err != nil {
		return fmt.Errorf("drain connection %d: %w", pc.ct.ID(), err)
	}
	var first error
	for _, r := range p.batch[:n] {
		if err := p.accept(pc, r); err != nil && first == nil {
			first = err
		}
	}
	return first
}

// accept hands one ref back to the Tracker. In strict mode a refused ref
// must have changed nothing.
func (p *ownedPub) accept(pc *pubConn, r parallax.ChunkRef) error {
	if !p.strict {
		return p.tr.Return(pc.ct, r)
	}
	before, out := p.tr.Stats(), pc.ct.Outstanding()
	err := p.tr.Return(pc.ct, r)
	if err != nil {
		after := p.tr.Stats()
		if (after.Free != before.Free || after.InUse != before.InUse || after.Units != before.Units ||
			pc.ct.Outstanding() != out) && p.violation == nil {
			p.violation = fmt.Errorf("refused return %v changed the accounting: %+v → %+v", r, before, after)
		}
	}
	return err
}

// ownedSub is a subscriber's side of one connection: the publisher's data
// segment mapped read-only and the connection segment, taken from and
// released into through the step-7 engine (internal/ownedsub). The wait
// is the harness's own (the data wake, with the data ring's close as the
// end of the stream, which the engine does not treat as an event).
type ownedSub struct {
	dataMap, connMap *segment.Mapped
	e                *ownedsub.Engine
	sc               *ownedsub.Conn
	c                *ringbuf.Conn
	data, ret        *ringbuf.Ring
	wake             *ringbuf.Notifier
	opts             ringbuf.WaitOptions
	pat              []byte
	ready            func() bool
	cur              ownedsub.Sample // the sample take returns, taken in place
}

// openOwnedSub attaches a subscriber to data segment fd df (read-only) and
// connection fd cf, checking both against the router's descriptors.
func openOwnedSub(df, cf *os.File, d dataseg.Desc, cd ringbuf.ConnDesc, mode string, payload int) (_ *ownedSub, err error) {
	s := &ownedSub{opts: waitOptions(mode), pat: pattern(payload), e: ownedsub.New(ownedsub.Options{SingleGoroutine: true})}
	defer func() {
		if err != nil {
			s.Close()
		}
	}()
	if s.dataMap, err = openSeg(df, dataseg.Size(d), true); err != nil {
		cf.Close()
		return nil, fmt.Errorf("open data segment: %w", err)
	}
	if s.connMap, err = openSeg(cf, ringbuf.ConnSize(int(cd.DataCap), int(cd.ReturnCap)), false); err != nil {
		return nil, fmt.Errorf("open connection segment: %w", err)
	}
	seg, err := dataseg.Attach(s.dataMap.Bytes(), d, true)
	if err != nil {
		return nil, err
	}
	if s.c, err = ringbuf.AttachConn(s.connMap.Bytes(), cd); err != nil {
		return nil, err
	}
	// The publisher has one segment: index d.Index, so d.Index+1 indices.
	if s.sc, err = s.e.AddConn(s.c, int(d.Index)+1); err != nil {
		return nil, err
	}
	if err = s.e.AddSegment(s.sc, seg); err != nil {
		return nil, err
	}
	s.data, s.ret, s.wake = s.c.DataRing(), s.c.ReturnRing(), s.c.DataWake()
	s.ready = func() bool { return s.data.Len() > 0 || s.data.Closed() }
	return s, nil
}

// Close removes the connection from the engine and unmaps both segments.
// Idempotent.
func (s *ownedSub) Close() error {
	if s.sc != nil {
		_, _ = s.e.RemoveConn(s.sc)
	}
	var errs []error
	for _, m := range []*segment.Mapped{s.connMap, s.dataMap} {
		if m != nil {
			errs = append(errs, m.Close())
		}
	}
	return errors.Join(errs...)
}

// take waits for the next sample: the engine validates the ref against the
// publisher's segment (index, slot, generation, length) and a bad one is
// its ConnError. io.EOF once the data ring is closed and drained. The
// sample is s.cur, valid until the next take.
func (s *ownedSub) take() (*ownedsub.Sample, error) {
	for {
		err := s.e.TryTakeInto(&s.cur)
		if err != ownedsub.ErrEmpty {
			return &s.cur, err
		}
		if s.data.Closed() && s.data.Len() == 0 {
			return nil, io.EOF
		}
		if err := s.wake.Wait(context.Background(), s.ready, s.opts); err != nil {
			return nil, err
		}
	}
}

// popRaw pops one entry past the engine, as a hostile subscriber that
// stopped caring does (waiting if the ring is empty); io.EOF once the data
// ring is closed and drained.
func (s *ownedSub) popRaw() error {
	for {
		_, err := s.data.TryPop()
		if err != ringbuf.ErrEmpty {
			return err
		}
		if s.data.Closed() && s.data.Len() == 0 {
			return io.EOF
		}
		if err := s.wake.Wait(context.Background(), s.ready, s.opts); err != nil {
			return err
		}
	}
}

// recv takes a message, reads and checks every byte and its header,
// releases it (one return push) and returns its sequence number.
func (s *ownedSub) recv() (uint64, error) {
	x, err := s.take()
	if err != nil {
		return 0, err
	}
	seq, err := readMsg(x.Bytes(), s.pat)
	if err == nil && x.Meta().Seq != seq {
		err = fmt.Errorf("header seq %d, payload seq %d", x.Meta().Seq, seq)
	}
	if err != nil {
		return 0, err
	}
	return seq, x.Release()
}

// runOwnedChild parses the config, runs fn and reports a failure on
// stderr, as runChild does.
func runOwnedChild(name string, args []string, fn func(ownedConfig) error) int {
	c, err := parseOwned(args)
	if err == nil {
		err = fn(c)
	}
	if err != nil {
		fmt.Fprintf(os.Stderr, "%s: %v\n", name, err)
		return 1
	}
	return 0
}

// ownedSinkChild receives and checks messages in order until the data ring
// is closed, returning every ref, then prints received=N. With Hostile it
// also forges returns (see forgeReturns).
func ownedSinkChild(args []string) int {
	return runOwnedChild("owned-sink", args, func(c ownedConfig) error {
		stop, err := childProfile()
		if err != nil {
			return err
		}
		defer stop()
		s, err := openOwnedSub(os.NewFile(3, "data"), os.NewFile(4, "conn"), c.Data, c.Conn, c.Mode, c.Payload)
		if err != nil {
			return err
		}
		defer s.Close()
		var n, last uint64
		forged := false
		for {
			if forged {
				// A hostile peer keeps popping and stops caring: chunks
				// its forged returns gave back may have been reused. It
				// pops raw (its engine would hold, and stop at MaxHeld).
				if err := s.popRaw(); errors.Is(err, io.EOF) {
					break
				} else if err != nil {
					return err
				}
				continue
			}
			x, err := s.take()
			if errors.Is(err, io.EOF) {
				break
			}
			if err != nil {
				return err
			}
			seq, err := readMsg(x.Bytes(), s.pat)
			if err != nil {
				return fmt.Errorf("message after %d: %w", last, err)
			}
			if x.Meta().Seq != seq || seq <= last {
				return fmt.Errorf("message %d (header %d) after %d", seq, x.Meta().Seq, last)
			}
			last = seq
			n++
			if c.Hostile {
				// The engine's release is honest: the hostile peer
				// writes the return ring itself from now on (and never
				// releases through the engine again: one producer).
				forgeReturns(s, x.Ref(), c.Data.Count)
				forged = true
				continue
			}
			if err := x.Release(); err != nil {
				return err
			}
		}
		fmt.Printf("received=%d last=%d\n", n, last)
		return nil
	})
}

// forgeReturns is a hostile subscriber's release of ref: a wrong
// generation of it, garbage, the ref itself, the ref again (a double
// return), then refs of every slot under nearby generations, which name
// chunks delivered only on other connections. Push failures (a full return
// ring) are ignored: a hostile peer does not care.
func forgeReturns(s *ownedSub, ref parallax.ChunkRef, count uint32) {
	push := func(r parallax.ChunkRef) { _, _ = s.ret.TryPush(r) }
	push(parallax.MakeRef(ref.Pool(), ref.Slot(), parallax.NextGen(ref.Gen())))
	push(parallax.ChunkRef(0xdead_beef_cafe_f00d))
	push(ref)
	push(ref)
	for slot := range count {
		for gen := uint32(1); gen <= 3; gen++ {
			if slot != ref.Slot() {
				push(parallax.MakeRef(ref.Pool(), slot, gen))
			}
		}
	}
	_ = s.c.ReturnWake().Notify()
}

// ownedIdleChild maps the data segment read-only and holds it until its
// stdin closes: the idle client the issue keeps attached through kills.
func ownedIdleChild(args []string) int {
	return runOwnedChild("owned-idle", args, func(c ownedConfig) error {
		m, err := openSeg(os.NewFile(3, "data"), dataseg.Size(c.Data), true)
		if err != nil {
			return err
		}
		defer m.Close()
		if _, err := dataseg.Attach(m.Bytes(), c.Data, true); err != nil {
			return err
		}
		fmt.Println("attached=1")
		_, err = io.Copy(io.Discard, os.Stdin)
		return err
	})
}
