package shm_test

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"testing"
	"time"

	"github.com/parallax-ipc/parallax/mempool"
	"github.com/parallax-ipc/parallax/ringbuf"
)

// Wait modes of the benchmarks: futex sleeps at once (Spin -1), default
// spins DefaultSpin checks and then sleeps, busypoll never sleeps.
var (
	benchModes    = []string{"futex", "default", "busypoll"}
	benchPayloads = []int{64, 4 << 10, 1 << 20}
)

// latencySamples bounds the round-trip samples kept (the last ones win).
const latencySamples = 1 << 16

// pattern returns the payload bytes a sender copies into every message
// (the first 8 bytes are then overwritten with the sequence number).
func pattern(n int) []byte {
	p := make([]byte, n)
	for i := range p {
		p[i] = byte(i*7 + 3)
	}
	return p
}

// errPayload reports a received message whose bytes are not the sent ones.
var errPayload = errors.New("payload mismatch")

// writeMsg fills dst (the whole payload: the sender writes every byte).
func writeMsg(dst, pat []byte, seq uint64) {
	copy(dst, pat)
	binary.LittleEndian.PutUint64(dst, seq)
}

// readMsg reads every byte of src, checks it against pat and returns the
// sequence number.
func readMsg(src, pat []byte) (uint64, error) {
	if len(src) != len(pat) || !bytes.Equal(src[8:], pat[8:]) {
		return 0, errPayload
	}
	return binary.LittleEndian.Uint64(src), nil
}

// endpoint is one side of a shared-memory channel: it sends on tx (waking
// the peer's notifier txN) and receives on rx (sleeping on its own rxN).
type endpoint struct {
	pool     *mempool.Pool
	tx, rx   *ringbuf.Ring
	txN, rxN *ringbuf.Notifier
	opts     ringbuf.WaitOptions
	pat      []byte
	ready    func() bool
}

func newEndpoint(d *domain, tx, rx int, mode string) *endpoint {
	e := &endpoint{pool: d.pool, opts: waitOptions(mode), pat: pattern(d.cfg.Payload)}
	if tx >= 0 {
		e.tx, e.txN = d.rings[tx], d.notifiers[tx]
	}
	if rx >= 0 {
		e.rx, e.rxN = d.rings[rx], d.notifiers[rx]
		e.ready = func() bool { return e.rx.Len() > 0 || e.rx.Closed() }
	}
	return e
}

// send loans a chunk, writes the whole payload, publishes it and notifies.
func (e *endpoint) send(seq uint64) error {
	ref, err := e.pool.Loan(0)
	if err != nil {
		return err
	}
	buf, err := e.pool.Payload(ref)
	if err != nil {
		return err
	}
	writeMsg(buf[:len(e.pat)], e.pat, seq)
	if err := e.pool.SetLength(ref, len(e.pat)); err != nil {
		return err
	}
	if _, err := e.tx.Push(context.Background(), ref); err != nil {
		return err
	}
	return e.txN.Notify()
}

// recv waits for a message, reads and checks every byte, releases it and
// returns its sequence number. It returns io.EOF once rx is closed and
// drained.
func (e *endpoint) recv() (uint64, error) {
	for {
		ref, err := e.rx.TryPop()
		if err != nil && err != ringbuf.ErrEmpty {
			return 0, err
		}
		if err == nil {
			data, err := e.pool.Data(ref)
			if err != nil {
				return 0, err
			}
			seq, err := readMsg(data, e.pat)
			if err != nil {
				return 0, err
			}
			_, err = e.pool.Release(ref)
			return seq, err
		}
		if e.rx.Closed() && e.rx.Len() == 0 {
			return 0, io.EOF
		}
		if err := e.rxN.Wait(context.Background(), e.ready, e.opts); err != nil {
			return 0, err
		}
	}
}

// Ring 0 and notifier 0 carry parent → child, ring 1 and notifier 1 child →
// parent.
func pingPongConfig(mode string, payload int) config {
	return config{
		Notifiers: 2, Rings: 2, Capacity: 2,
		ChunkSize: alignUp(payload, mempool.ChunkAlign), Count: 4,
		Policy: int(ringbuf.BlockProducer), Mode: mode, Payload: payload,
	}
}

// BenchmarkPingPong measures a round trip between two processes over a ring
// in each direction: the parent loans, fills and publishes a message; the
// child reads every byte, answers with a message of its own that it fills,
// and releases; the parent reads every byte of the answer and releases it.
// ns/op is one round trip; p50-µs and p99-µs are its quantiles.
func BenchmarkPingPong(b *testing.B) {
	for _, mode := range benchModes {
		for _, payload := range benchPayloads {
			b.Run(fmt.Sprintf("mode=%s/payload=%d", mode, payload), func(b *testing.B) {
				c := pingPongConfig(mode, payload)
				d := mustDomain(b, "shm-bench", c)
				ch := startChild(b, d, "echo", "bench-echo", false, c)
				e := newEndpoint(d, 0, 1, mode)
				roundTrip := func(seq uint64) error {
					if err := e.send(seq); err != nil {
						return err
					}
					got, err := e.recv()
					if err == nil && got != seq {
						err = fmt.Errorf("answer %d to message %d", got, seq)
					}
					return err
				}
				runPingPong(b, roundTrip)
				_ = e.tx.Close()
				_ = e.txN.Notify()
				waitChildren(b, d.abort, ch)
			})
		}
	}
}

// runPingPong warms up, then times roundTrip once per iteration and reports
// the quantiles.
func runPingPong(b *testing.B, roundTrip func(seq uint64) error) {
	var seq uint64
	for range 100 {
		seq++
		if err := roundTrip(seq); err != nil {
			b.Fatal(err)
		}
	}
	samples := make([]int64, latencySamples)
	n := 0
	b.ReportAllocs()
	for b.Loop() {
		seq++
		t0 := time.Now()
		if err := roundTrip(seq); err != nil {
			b.Fatal(err)
		}
		samples[n%latencySamples] = int64(time.Since(t0))
		n++
	}
	reportLatency(b, samples[:min(n, latencySamples)])
}

func reportLatency(b *testing.B, s []int64) {
	if len(s) == 0 {
		return
	}
	slices.Sort(s)
	q := func(p float64) float64 { return float64(s[int(p*float64(len(s)-1))]) / 1e3 }
	b.ReportMetric(q(0.50), "p50-µs")
	b.ReportMetric(q(0.99), "p99-µs")
}

// benchEchoChild answers every message on ring 0 with one on ring 1.
func benchEchoChild(args []string) int {
	return runChild("echo", args, false, func(c config, d *domain) error {
		e := newEndpoint(d, 1, 0, c.Mode)
		for want := uint64(1); ; want++ {
			seq, err := e.recv()
			if errors.Is(err, io.EOF) {
				return nil
			}
			if err != nil {
				return err
			}
			if seq != want {
				return fmt.Errorf("message %d, want %d", seq, want)
			}
			if err := e.send(seq); err != nil {
				return err
			}
		}
	})
}

// runChild opens the domain on fds 3 and 4 and runs fn in it.
func runChild(name string, args []string, ro bool, fn func(config, *domain) error) int {
	c, err := parseConfig(args)
	if err == nil {
		var d *domain
		if d, err = openDomain(c, ro); err == nil {
			err = fn(c, d)
			if cerr := d.Close(); err == nil {
				err = cerr
			}
		}
	}
	if err != nil {
		fmt.Fprintf(os.Stderr, "%s: %v\n", name, err)
		return 1
	}
	return 0
}

// BenchmarkThroughput measures one-way throughput: the parent loans, fills,
// publishes and notifies as fast as the BlockProducer ring lets it; the
// child (waiting in the given mode) reads every byte and releases. msgs/s
// counts until the child has released the last message.
func BenchmarkThroughput(b *testing.B) {
	for _, mode := range benchModes {
		for _, payload := range benchPayloads {
			b.Run(fmt.Sprintf("mode=%s/payload=%d", mode, payload), func(b *testing.B) {
				capacity := 64
				if payload > 64<<10 {
					capacity = 8
				}
				c := config{
					Notifiers: 1, Rings: 1, Capacity: capacity,
					ChunkSize: alignUp(payload, mempool.ChunkAlign), Count: capacity + 2,
					Policy: int(ringbuf.BlockProducer), Mode: mode, Payload: payload,
				}
				d := mustDomain(b, "shm-bench", c)
				ch := startChild(b, d, "sink", "bench-sink", true, c)
				e := newEndpoint(d, 0, -1, mode)
				// Done when the sink has released everything.
				drain := func() {
					for e.tx.Len() > 0 || d.pool.Stats().InUse > 0 {
						runtime.Gosched()
					}
				}
				var seq uint64
				for range 100 { // warm up: the child is running and waiting
					seq++
					if err := e.send(seq); err != nil {
						b.Fatal(err)
					}
				}
				drain()
				b.SetBytes(int64(payload))
				b.ReportAllocs()
				first := seq
				start := time.Now()
				for b.Loop() {
					seq++
					if err := e.send(seq); err != nil {
						b.Fatal(err)
					}
				}
				drain()
				elapsed := time.Since(start)
				seq -= first
				_ = e.tx.Close()
				_ = e.txN.Notify()
				waitChildren(b, d.abort, ch)
				b.ReportMetric(float64(seq)/elapsed.Seconds(), "msgs/s")
			})
		}
	}
}

// benchSinkChild receives and checks messages until the ring is closed.
func benchSinkChild(args []string) int {
	return runChild("sink", args, true, func(c config, d *domain) error {
		e := newEndpoint(d, -1, 0, c.Mode)
		for want := uint64(1); ; want++ {
			seq, err := e.recv()
			if errors.Is(err, io.EOF) {
				return nil
			}
			if err != nil {
				return err
			}
			if seq != want {
				return fmt.Errorf("message %d, want %d", seq, want)
			}
		}
	})
}

// udsPair returns a connected Unix stream socket pair: the parent's end and
// the child's end as a file to pass it.
func udsPair(b *testing.B) (*net.UnixConn, *os.File) {
	path := filepath.Join(b.TempDir(), "s")
	l, err := net.ListenUnix("unix", &net.UnixAddr{Name: path, Net: "unix"})
	if err != nil {
		b.Fatal(err)
	}
	defer l.Close()
	pc, err := net.DialUnix("unix", nil, l.Addr().(*net.UnixAddr))
	if err != nil {
		b.Fatal(err)
	}
	cc, err := l.AcceptUnix()
	if err != nil {
		pc.Close()
		b.Fatal(err)
	}
	defer cc.Close()
	f, err := cc.File()
	if err != nil {
		pc.Close()
		b.Fatal(err)
	}
	return pc, f
}

// udsConn is the child's end of udsPair, on fd 3.
func udsConn() (net.Conn, error) {
	f := os.NewFile(3, "uds")
	defer f.Close()
	return net.FileConn(f)
}

// BenchmarkPingPongUDS is BenchmarkPingPong over a Unix stream socket: the
// same payload bytes are written, copied through the kernel both ways and
// read, by the same two processes.
func BenchmarkPingPongUDS(b *testing.B) {
	for _, payload := range benchPayloads {
		b.Run(fmt.Sprintf("payload=%d", payload), func(b *testing.B) {
			conn, f := udsPair(b)
			defer conn.Close()
			ch := startChildFiles(b, "uds-echo", "bench-uds-echo", []*os.File{f}, config{Payload: payload})
			f.Close()
			pat, sbuf, rbuf := pattern(payload), make([]byte, payload), make([]byte, payload)
			roundTrip := func(seq uint64) error {
				writeMsg(sbuf, pat, seq)
				if _, err := conn.Write(sbuf); err != nil {
					return err
				}
				if _, err := io.ReadFull(conn, rbuf); err != nil {
					return err
				}
				got, err := readMsg(rbuf, pat)
				if err == nil && got != seq {
					err = fmt.Errorf("answer %d to message %d", got, seq)
				}
				return err
			}
			runPingPong(b, roundTrip)
			_ = conn.CloseWrite()
			waitChildren(b, nil, ch)
		})
	}
}

// benchUDSEchoChild answers every message until EOF.
func benchUDSEchoChild(args []string) int {
	err := func() error {
		c, err := parseConfig(args)
		if err != nil {
			return err
		}
		conn, err := udsConn()
		if err != nil {
			return err
		}
		defer conn.Close()
		pat, sbuf, rbuf := pattern(c.Payload), make([]byte, c.Payload), make([]byte, c.Payload)
		for want := uint64(1); ; want++ {
			if _, err := io.ReadFull(conn, rbuf); errors.Is(err, io.EOF) {
				return nil
			} else if err != nil {
				return err
			}
			seq, err := readMsg(rbuf, pat)
			if err != nil {
				return err
			}
			if seq != want {
				return fmt.Errorf("message %d, want %d", seq, want)
			}
			writeMsg(sbuf, pat, seq)
			if _, err := conn.Write(sbuf); err != nil {
				return err
			}
		}
	}()
	if err != nil {
		fmt.Fprintln(os.Stderr, "uds-echo:", err)
		return 1
	}
	return 0
}

// BenchmarkThroughputUDS is BenchmarkThroughput over a Unix stream socket.
func BenchmarkThroughputUDS(b *testing.B) {
	for _, payload := range benchPayloads {
		b.Run(fmt.Sprintf("payload=%d", payload), func(b *testing.B) {
			conn, f := udsPair(b)
			defer conn.Close()
			ch := startChildFiles(b, "uds-sink", "bench-uds-sink", []*os.File{f}, config{Payload: payload})
			f.Close()
			pat, sbuf := pattern(payload), make([]byte, payload)
			// Warm up: the child is running once it echoes a first byte.
			if _, err := conn.Write([]byte{1}); err != nil {
				b.Fatal(err)
			}
			if _, err := io.ReadFull(conn, sbuf[:1]); err != nil {
				b.Fatal(err)
			}
			b.SetBytes(int64(payload))
			b.ReportAllocs()
			var seq uint64
			start := time.Now()
			for b.Loop() {
				seq++
				writeMsg(sbuf, pat, seq)
				if _, err := conn.Write(sbuf); err != nil {
					b.Fatal(err)
				}
			}
			// The sink answers with its count once it read everything.
			if err := conn.CloseWrite(); err != nil {
				b.Fatal(err)
			}
			var ack [8]byte
			if _, err := io.ReadFull(conn, ack[:]); err != nil {
				b.Fatal(err)
			}
			elapsed := time.Since(start)
			waitChildren(b, nil, ch)
			if got := binary.LittleEndian.Uint64(ack[:]); got != seq {
				b.Fatalf("sink received %d messages, sent %d", got, seq)
			}
			b.ReportMetric(float64(seq)/elapsed.Seconds(), "msgs/s")
		})
	}
}

// benchUDSSinkChild reads and checks messages until EOF, then writes how
// many it received.
func benchUDSSinkChild(args []string) int {
	err := func() error {
		c, err := parseConfig(args)
		if err != nil {
			return err
		}
		conn, err := udsConn()
		if err != nil {
			return err
		}
		defer conn.Close()
		pat, rbuf := pattern(c.Payload), make([]byte, c.Payload)
		if _, err := io.ReadFull(conn, rbuf[:1]); err != nil { // warm-up byte
			return err
		}
		if _, err := conn.Write(rbuf[:1]); err != nil {
			return err
		}
		var n uint64
		for {
			if _, err := io.ReadFull(conn, rbuf); errors.Is(err, io.EOF) {
				break
			} else if err != nil {
				return err
			}
			seq, err := readMsg(rbuf, pat)
			if err != nil {
				return err
			}
			if n++; seq != n {
				return fmt.Errorf("message %d, want %d", seq, n)
			}
		}
		_, err = conn.Write(binary.LittleEndian.AppendUint64(nil, n))
		return err
	}()
	if err != nil {
		fmt.Fprintln(os.Stderr, "uds-sink:", err)
		return 1
	}
	return 0
}
