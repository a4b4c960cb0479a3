package shm_test

import (
	"bytes"
	"encoding/binary"
	"errors"
	"flag"
	"fmt"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/parallax-ipc/parallax"
	"github.com/parallax-ipc/parallax/internal/testutil"
	"github.com/parallax-ipc/parallax/mempool"
	"github.com/parallax-ipc/parallax/ringbuf"
	"github.com/parallax-ipc/parallax/segment"
)

// line is the alignment of every structure in the management segment: the
// 128-byte padding unit of mempool and ringbuf.
const line = 128

// poolID is the id of the single pool of a test domain.
const poolID = 7

// config describes a test domain and what a child does in it. The parent
// passes it to its children as flags, so both sides compute the same layout.
//
// Management segment layout:
//
//	0                      notifier[0] ... notifier[Notifiers-1]   (128 B each)
//	ringOff(0)             ring[0] ... ring[Rings-1]               (Size(Capacity), 128-aligned)
//	poolOff()              pool management area                    (MgmtSize(Class))
//
// The payload segment holds the pool's chunks and nothing else.
type config struct {
	Notifiers int
	Rings     int
	Capacity  int
	ChunkSize int
	Count     int
	Policy    int // ringbuf.Policy
	N         int // messages per producer
	ID        int // producer id (1-based), the origin and loaner id
	Slow      bool
	Mode      string // wait mode: futex, default, busypoll
	Payload   int    // benchmark payload bytes
}

func (c config) class() mempool.Class {
	return mempool.Class{ChunkSize: uint32(c.ChunkSize), Count: uint32(c.Count)}
}

func alignUp(n, a int) int { return (n + a - 1) / a * a }

func (c config) notifierOff(i int) int { return i * alignUp(ringbuf.NotifierSize, line) }
func (c config) ringOff(i int) int {
	return c.notifierOff(c.Notifiers) + i*alignUp(ringbuf.Size(c.Capacity), line)
}
func (c config) poolOff() int  { return c.ringOff(c.Rings) }
func (c config) mgmtSize() int { return c.poolOff() + mempool.MgmtSize(c.class()) }

// args renders c as child flags.
func (c config) args() []string {
	return []string{
		"-notifiers=" + strconv.Itoa(c.Notifiers),
		"-rings=" + strconv.Itoa(c.Rings),
		"-cap=" + strconv.Itoa(c.Capacity),
		"-chunk=" + strconv.Itoa(c.ChunkSize),
		"-count=" + strconv.Itoa(c.Count),
		"-policy=" + strconv.Itoa(c.Policy),
		"-n=" + strconv.Itoa(c.N),
		"-id=" + strconv.Itoa(c.ID),
		"-slow=" + strconv.FormatBool(c.Slow),
		"-mode=" + c.Mode,
		"-payload=" + strconv.Itoa(c.Payload),
	}
}

// parseConfig is the child side of config.args.
func parseConfig(args []string) (config, error) {
	var c config
	fs := flag.NewFlagSet("child", flag.ContinueOnError)
	fs.IntVar(&c.Notifiers, "notifiers", 0, "")
	fs.IntVar(&c.Rings, "rings", 0, "")
	fs.IntVar(&c.Capacity, "cap", 0, "")
	fs.IntVar(&c.ChunkSize, "chunk", 0, "")
	fs.IntVar(&c.Count, "count", 0, "")
	fs.IntVar(&c.Policy, "policy", 0, "")
	fs.IntVar(&c.N, "n", 0, "")
	fs.IntVar(&c.ID, "id", 0, "")
	fs.BoolVar(&c.Slow, "slow", false, "")
	fs.StringVar(&c.Mode, "mode", "", "")
	fs.IntVar(&c.Payload, "payload", 0, "")
	if err := fs.Parse(args); err != nil {
		return c, fmt.Errorf("parse child flags: %w", err)
	}
	return c, nil
}

// waitOptions maps a mode name to notifier wait options.
func waitOptions(mode string) ringbuf.WaitOptions {
	switch mode {
	case "futex":
		return ringbuf.WaitOptions{Spin: -1}
	case "busypoll":
		return ringbuf.WaitOptions{BusyPoll: true}
	default:
		return ringbuf.WaitOptions{}
	}
}

// domain is one process's view of a test domain: both segments and the
// structures laid over them. Close unmaps and closes both segments.
type domain struct {
	cfg       config
	mgmt      *segment.Mapped
	payload   *segment.Mapped
	notifiers []*ringbuf.Notifier
	rings     []*ringbuf.Ring
	pool      *mempool.Pool
}

// newDomain creates and formats a domain, as the router would.
func newDomain(name string, c config) (_ *domain, err error) {
	d := &domain{cfg: c}
	defer func() {
		if err != nil {
			d.Close()
		}
	}()
	if d.mgmt, err = segment.NewMemfd(name+"-mgmt", c.mgmtSize(), segment.MemfdOptions{}); err != nil {
		return nil, err
	}
	if d.payload, err = segment.NewMemfd(name+"-payload", c.class().PayloadSize(), segment.MemfdOptions{}); err != nil {
		return nil, err
	}
	mem := d.mgmt.Bytes()
	for i := range c.Notifiers {
		off := c.notifierOff(i)
		n, err := ringbuf.FormatNotifier(mem[off : off+ringbuf.NotifierSize])
		if err != nil {
			return nil, fmt.Errorf("format notifier %d: %w", i, err)
		}
		d.notifiers = append(d.notifiers, n)
	}
	for i := range c.Rings {
		off := c.ringOff(i)
		r, err := ringbuf.Format(mem[off:off+ringbuf.Size(c.Capacity)], c.Capacity, ringbuf.Policy(c.Policy))
		if err != nil {
			return nil, fmt.Errorf("format ring %d: %w", i, err)
		}
		d.rings = append(d.rings, r)
	}
	if d.pool, err = mempool.Format(mem[c.poolOff():c.mgmtSize()], poolID, c.class()); err != nil {
		return nil, fmt.Errorf("format pool: %w", err)
	}
	if err = d.pool.SetPayload(d.payload.Bytes()); err != nil {
		return nil, fmt.Errorf("set pool payload: %w", err)
	}
	return d, nil
}

// mustDomain is newDomain for a test: it skips where memfd segments are not
// supported and closes the domain at cleanup (after the children, whose
// cleanups were registered later, have been reaped).
func mustDomain(t testing.TB, name string, c config) *domain {
	t.Helper()
	d, err := newDomain(name, c)
	if errors.Is(err, parallax.ErrNotSupported) {
		t.Skipf("memfd segments not supported here: %v", err)
	}
	require.NoError(t, err)
	t.Cleanup(func() { require.NoError(t, d.Close()) })
	return d
}

// openDomain attaches to a domain whose segments arrive as fds 3
// (management) and 4 (payload, read-only when ro), as a client would.
func openDomain(c config, ro bool) (_ *domain, err error) {
	d := &domain{cfg: c}
	defer func() {
		if err != nil {
			d.Close()
		}
	}()
	mf, pf := os.NewFile(3, "mgmt"), os.NewFile(4, "payload")
	if d.mgmt, err = segment.Open(mf, segment.OpenOptions{ExpectedSize: int64(c.mgmtSize()), RequireSeals: true}); err != nil {
		mf.Close()
		pf.Close()
		return nil, fmt.Errorf("open management segment: %w", err)
	}
	if d.payload, err = segment.Open(pf, segment.OpenOptions{ExpectedSize: int64(c.class().PayloadSize()), RequireSeals: true, ReadOnly: ro}); err != nil {
		pf.Close()
		return nil, fmt.Errorf("open payload segment: %w", err)
	}
	mem := d.mgmt.Bytes()
	for i := range c.Notifiers {
		off := c.notifierOff(i)
		n, err := ringbuf.AttachNotifier(mem[off : off+ringbuf.NotifierSize])
		if err != nil {
			return nil, fmt.Errorf("attach notifier %d: %w", i, err)
		}
		d.notifiers = append(d.notifiers, n)
	}
	for i := range c.Rings {
		off := c.ringOff(i)
		r, err := ringbuf.Attach(mem[off : off+ringbuf.Size(c.Capacity)])
		if err != nil {
			return nil, fmt.Errorf("attach ring %d: %w", i, err)
		}
		d.rings = append(d.rings, r)
	}
	if d.pool, err = mempool.Attach(mem[c.poolOff():c.mgmtSize()], d.payload.Bytes()); err != nil {
		return nil, fmt.Errorf("attach pool: %w", err)
	}
	return d, nil
}

// abort closes every ring and notifier, so that children blocked in Push or
// Wait return (with an error wrapping os.ErrClosed).
func (d *domain) abort() {
	for _, r := range d.rings {
		_ = r.Close()
	}
	for _, n := range d.notifiers {
		_ = n.Close()
	}
}

// Close unmaps and closes both segments. It is idempotent.
func (d *domain) Close() error {
	var errs []error
	if d.payload != nil {
		errs = append(errs, d.payload.Close())
	}
	if d.mgmt != nil {
		errs = append(errs, d.mgmt.Close())
	}
	return errors.Join(errs...)
}

// files returns the fds to hand a child: the management segment and the
// payload segment, read-only when ro. The returned closer closes what files
// opened, once the child started (exec duplicates the fds into the child;
// the segments keep their own).
func (d *domain) files(t testing.TB, ro bool) (files []*os.File, closeFiles func()) {
	t.Helper()
	if !ro {
		return []*os.File{d.mgmt.File(), d.payload.File()}, func() {}
	}
	pf, err := d.payload.ReadOnlyFile()
	require.NoError(t, err)
	return []*os.File{d.mgmt.File(), pf}, func() { pf.Close() }
}

// child is a re-executed test binary in some role.
type child struct {
	name string
	cmd  *exec.Cmd
	out  bytes.Buffer
}

// startChild starts role on d's segments (fds 3 and 4, the payload
// read-only when ro), with c as its flags.
func startChild(t testing.TB, d *domain, name, role string, ro bool, c config) *child {
	t.Helper()
	files, closeFiles := d.files(t, ro)
	defer closeFiles()
	return startChildFiles(t, name, role, files, c)
}

// startChildFiles starts role with files as fds 3, 4, ... and c as its
// flags. It reaps the child at cleanup if the test ended before waiting for
// it. The caller keeps ownership of files (exec duplicates them).
func startChildFiles(t testing.TB, name, role string, files []*os.File, c config) *child {
	t.Helper()
	ch := &child{name: name}
	ch.cmd = testutil.ChildCommand(t, role, files, c.args()...)
	ch.cmd.Stdout = &ch.out
	dieWithParent(ch.cmd)
	require.NoError(t, ch.cmd.Start(), "start %s", name)
	t.Cleanup(func() {
		if ch.cmd.ProcessState == nil { // the test failed before waiting
			_ = ch.cmd.Process.Kill()
			_ = ch.cmd.Wait()
		}
	})
	return ch
}

// waitChildren waits for every child. When one fails it calls abort (nil:
// nothing) so the others return instead of waiting forever for a dead peer.
func waitChildren(t testing.TB, abort func(), children ...*child) {
	t.Helper()
	type result struct {
		ch  *child
		err error
	}
	done := make(chan result, len(children))
	for _, ch := range children {
		go func() { done <- result{ch, ch.cmd.Wait()} }()
	}
	var errs []error
	for range children {
		r := <-done
		if r.err != nil {
			errs = append(errs, fmt.Errorf("child %s: %w", r.ch.name, r.err))
			if abort != nil {
				abort()
			}
		}
	}
	require.NoError(t, errors.Join(errs...))
}

// report parses a child's "key=value ..." stdout line.
func (ch *child) report(t testing.TB) map[string]uint64 {
	t.Helper()
	m := map[string]uint64{}
	for _, f := range strings.Fields(ch.out.String()) {
		k, v, ok := strings.Cut(f, "=")
		require.True(t, ok, "child %s printed %q", ch.name, f)
		n, err := strconv.ParseUint(v, 10, 64)
		require.NoError(t, err, "child %s printed %q", ch.name, f)
		m[k] = n
	}
	return m
}

// Payload pattern of message (origin, seq), len(b) a multiple of 8 and at
// least 24: word 0 is seq, word 1 origin, then mix words, then the XOR of
// all preceding words. A torn or misdirected chunk fails check.

func mix(seq uint64, k int) uint64 {
	return seq*0x9E3779B97F4A7C15 ^ uint64(k)*0xBF58476D1CE4E5B9
}

func fill(b []byte, origin, seq uint64) {
	end := len(b) - 8
	binary.LittleEndian.PutUint64(b, seq)
	binary.LittleEndian.PutUint64(b[8:], origin)
	x := seq ^ origin
	for k := 16; k < end; k += 8 {
		w := mix(seq, k)
		binary.LittleEndian.PutUint64(b[k:], w)
		x ^= w
	}
	binary.LittleEndian.PutUint64(b[end:], x)
}

func check(b []byte, origin, seq uint64) error {
	if len(b) < 24 || len(b)%8 != 0 {
		return fmt.Errorf("payload of %d bytes", len(b))
	}
	end := len(b) - 8
	if s, o := binary.LittleEndian.Uint64(b), binary.LittleEndian.Uint64(b[8:]); s != seq || o != origin {
		return fmt.Errorf("payload names origin %d seq %d, header origin %d seq %d", o, s, origin, seq)
	}
	x := seq ^ origin
	for k := 16; k < end; k += 8 {
		w := binary.LittleEndian.Uint64(b[k:])
		if w != mix(seq, k) {
			return fmt.Errorf("origin %d seq %d: torn payload word at byte %d", origin, seq, k)
		}
		x ^= w
	}
	if c := binary.LittleEndian.Uint64(b[end:]); c != x {
		return fmt.Errorf("origin %d seq %d: checksum %#x, want %#x", origin, seq, c, x)
	}
	return nil
}

// lengthFor is the payload length of message seq in chunks of size chunk:
// it varies between 24 bytes and the whole chunk in steps of 8.
func lengthFor(chunk int, seq uint64) int {
	return 24 + 8*int(seq%uint64((chunk-24)/8+1))
}

// timestampFor is the header timestamp the producer stores for (origin,
// seq), so the consumer can check every header field.
func timestampFor(origin, seq uint64) int64 { return int64(fingerprint(origin, seq) >> 1) }

// fingerprint hashes a message identity (splitmix64). Sums of fingerprints
// over the popped and the discarded messages must add up to the sum over
// all sent ones.
func fingerprint(origin, seq uint64) uint64 {
	z := origin<<40 | seq
	z += 0x9E3779B97F4A7C15
	z = (z ^ z>>30) * 0xBF58476D1CE4E5B9
	z = (z ^ z>>27) * 0x94D049BB133111EB
	return z ^ z>>31
}

// errRef names a validation failure of a popped or discarded reference.
func errRef(side string, ref parallax.ChunkRef, err error) error {
	return fmt.Errorf("%s ref %v: %w", side, ref, err)
}
