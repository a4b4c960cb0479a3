package shm_test

// The owned path of issue 12 with the publisher side played by the step-6
// engine (internal/ownedpub) instead of owned_harness_test.go's hand-written
// loop. Subscribers are ownedSub, which runs on the step-7 subscriber
// engine (internal/ownedsub).

import (
	"errors"
	"fmt"
	"os"

	"github.com/parallax-ipc/parallax/dataseg"
	"github.com/parallax-ipc/parallax/internal/ownedpub"
	"github.com/parallax-ipc/parallax/ringbuf"
	"github.com/parallax-ipc/parallax/segment"
)

// enginePub is a publisher process's view: its data segment mapped
// read-write, its connection segments, and the engine over them.
type enginePub struct {
	e      *ownedpub.Engine
	mapped []*segment.Mapped
	pat    []byte
}

// engineConn is one connection of an enginePub.
type engineConn struct {
	c  *ownedpub.Conn
	rc *ringbuf.Conn
}

// newEnginePub maps data segment fd f and adds it to a new engine.
func newEnginePub(f *os.File, d dataseg.Desc, payload int, opts ownedpub.Options) (_ *enginePub, err error) {
	p := &enginePub{e: ownedpub.New(opts), pat: pattern(payload)}
	m, err := openSeg(f, dataseg.Size(d), false)
	if err != nil {
		return nil, fmt.Errorf("open data segment: %w", err)
	}
	p.mapped = append(p.mapped, m)
	defer func() {
		if err != nil {
			p.Close()
		}
	}()
	seg, err := dataseg.Attach(m.Bytes(), d, false)
	if err != nil {
		return nil, err
	}
	return p, p.e.AddSegment(seg)
}

// addConn maps connection fd f and adds it with the descriptor's bound and
// policy, no history.
func (p *enginePub) addConn(f *os.File, d ringbuf.ConnDesc) (*engineConn, error) {
	m, err := openSeg(f, ringbuf.ConnSize(int(d.DataCap), int(d.ReturnCap)), false)
	if err != nil {
		return nil, fmt.Errorf("open connection segment: %w", err)
	}
	p.mapped = append(p.mapped, m)
	rc, err := ringbuf.AttachConn(m.Bytes(), d)
	if err != nil {
		return nil, err
	}
	c, err := p.e.AddConn(rc, int(d.Bound), d.Policy, 0)
	if err != nil {
		return nil, err
	}
	return &engineConn{c: c, rc: rc}, nil
}

// send loans a chunk, writes the whole payload and publishes it.
func (p *enginePub) send(seq uint64) error {
	l, err := p.e.Loan(len(p.pat))
	if err != nil {
		return err
	}
	writeMsg(l.Bytes(), p.pat, seq)
	// Seq in the header is the engine's own; the subscriber checks it
	// against the payload's, so the two must agree: both count from 1.
	return p.e.Publish(&l)
}

// Close unmaps every segment. Call it after the connections are done.
func (p *enginePub) Close() error {
	var errs []error
	for _, m := range p.mapped {
		errs = append(errs, m.Close())
	}
	p.mapped = nil
	return errors.Join(errs...)
}

// closeEngineConn ends the stream on c: the subscriber drains and exits.
func closeEngineConn(c *engineConn) {
	_ = c.rc.DataRing().Close()
	_ = c.rc.DataWake().Notify()
}

// abortEngineConn releases a publisher blocked on c's dead subscriber.
func abortEngineConn(c *engineConn) func() {
	return func() {
		_ = c.rc.DataRing().Close()
		_ = c.rc.ReturnWake().Close()
	}
}

// drainEveryFlag is ownedpub.Options.DrainEvery for the engine benchmarks'
// parent publisher (0: the engine's default).
var drainEveryFlag = 0

func init() {
	if v := os.Getenv("PARALLAX_BENCH_DRAIN_EVERY"); v != "" {
		if _, err := fmt.Sscan(v, &drainEveryFlag); err != nil {
			panic(fmt.Sprintf("PARALLAX_BENCH_DRAIN_EVERY=%q: %v", v, err))
		}
	}
}
