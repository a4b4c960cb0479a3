//go:build integration

package integration

import (
	"bufio"
	"context"
	"encoding/binary"
	"errors"
	"flag"
	"fmt"
	"hash/crc32"
	"io"
	"math/rand/v2"
	"os"
	"reflect"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/parallax-ipc/parallax"
	"github.com/parallax-ipc/parallax/publisher"
	"github.com/parallax-ipc/parallax/subscriber"
)

// Child processes are re-executions of the test binary. A child writes
// protocol lines to stdout (read by the parent test) and diagnostics to
// stderr, and reads control lines from stdin:
//
//	publisher: "ready" after New, "paused" at -pause-at (then waits for one
//	           stdin line), "map <seq> <dev> <inode> <fileoff>" with -maps,
//	           "result <pubID> <count> <crc> <subscribers>" at the end; with
//	           -hold it then waits for stdin EOF before closing.
//	subscriber: "ready" after New, "connected" once -wait-pubs publishers are
//	           connected (then, with -gate, waits for one stdin line),
//	           "map ..." with -maps, "pub <id> <count> <crc> <first> <last>"
//	           per publisher, "dropped <n>", "done <total>".
var childRoles = map[string]func([]string) int{
	"pub": pubMain,
	"sub": subMain,
}

// crcTable is the checksum both sides run over every payload byte.
var crcTable = crc32.MakeTable(crc32.Castagnoli)

// patternMax is the largest payload the pattern covers.
const patternMax = 8 << 20 // TestOwnedFrames8MiB

// pattern is a fixed pseudo-random block; message seq of n bytes is its
// seq (8 bytes, little endian) followed by pattern[off(seq):][:n-8].
var pattern = func() []byte {
	b := make([]byte, 2*patternMax)
	r := rand.New(rand.NewPCG(0x5eed, 0xfeed))
	for i := 0; i+8 <= len(b); i += 8 {
		binary.LittleEndian.PutUint64(b[i:], r.Uint64())
	}
	return b
}()

func patternOff(seq uint64) int { return int(seq*4099) % patternMax }

// fill writes message seq into b (len(b) >= 8).
func fill(b []byte, seq uint64) {
	binary.LittleEndian.PutUint64(b, seq)
	copy(b[8:], pattern[patternOff(seq):])
}

// verify checks that b is message seq.
func verify(b []byte, seq uint64) error {
	if len(b) < 8 {
		return fmt.Errorf("seq %d: %d byte payload", seq, len(b))
	}
	if got := binary.LittleEndian.Uint64(b); got != seq {
		return fmt.Errorf("seq %d: payload says seq %d", seq, got)
	}
	want := pattern[patternOff(seq):][:len(b)-8]
	if string(b[8:]) != string(want) {
		for i := range want {
			if b[8+i] != want[i] {
				return fmt.Errorf("seq %d: payload byte %d is %#x, want %#x", seq, 8+i, b[8+i], want[i])
			}
		}
	}
	return nil
}

// mapping describes where an address lives: the device and inode of the
// mapped file and the offset in that file.
type mapping struct {
	Dev     string
	Inode   uint64
	FileOff uint64
	Path    string
}

// mappingOf finds the /proc/self/maps entry containing b[0].
func mappingOf(b []byte) (mapping, error) {
	addr := uint64(reflect.ValueOf(b).Pointer())
	data, err := os.ReadFile("/proc/self/maps")
	if err != nil {
		return mapping{}, err
	}
	for line := range strings.SplitSeq(string(data), "\n") {
		f := strings.Fields(line)
		if len(f) < 5 {
			continue
		}
		lo, hi, ok := strings.Cut(f[0], "-")
		if !ok {
			continue
		}
		start, err1 := strconv.ParseUint(lo, 16, 64)
		end, err2 := strconv.ParseUint(hi, 16, 64)
		off, err3 := strconv.ParseUint(f[2], 16, 64)
		ino, err4 := strconv.ParseUint(f[4], 10, 64)
		if err := errors.Join(err1, err2, err3, err4); err != nil {
			return mapping{}, fmt.Errorf("parse maps line %q: %w", line, err)
		}
		if addr >= start && addr < end {
			m := mapping{Dev: f[3], Inode: ino, FileOff: off + (addr - start)}
			if len(f) > 5 {
				m.Path = strings.Join(f[5:], " ")
			}
			return m, nil
		}
	}
	return mapping{}, fmt.Errorf("address %#x is in no mapping", addr)
}

type typeFlags struct {
	name        string
	size, align uint
}

func (tf *typeFlags) register(fs *flag.FlagSet) {
	fs.StringVar(&tf.name, "type", "", "payload type name")
	fs.UintVar(&tf.size, "type-size", 0, "payload type size")
	fs.UintVar(&tf.align, "type-align", 0, "payload type alignment")
}

func childFail(role string, format string, args ...any) int {
	fmt.Fprintf(os.Stderr, "%s child (pid %d): %s\n", role, os.Getpid(), fmt.Sprintf(format, args...))
	return 1
}

// waitFor polls cond on a short ticker until it holds or ctx ends.
func waitFor(ctx context.Context, cond func() bool) error {
	tick := time.NewTicker(time.Millisecond)
	defer tick.Stop()
	for !cond() {
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-tick.C:
		}
	}
	return nil
}

func pubMain(args []string) int {
	fs := flag.NewFlagSet("pub", flag.ContinueOnError)
	socket := fs.String("socket", "", "router socket")
	topic := fs.String("topic", "t", "topic")
	n := fs.Int("n", 0, "samples to publish")
	size := fs.Int("size", 64, "payload size (>= 8)")
	history := fs.Int("history", 0, "history depth")
	subs := fs.Int("subs", 0, "wait for this many subscribers before publishing")
	pauseAt := fs.Int("pause-at", 0, "after this many samples, print paused and wait for a stdin line")
	hold := fs.Bool("hold", false, "after publishing, wait for stdin EOF before closing")
	maps := fs.Bool("maps", false, "print the mapping of every loaned chunk")
	blockTimeout := fs.Duration("block-timeout", time.Minute, "publisher block timeout")
	maxPayload := fs.Int("max-payload", 0, "publisher.Options.MaxPayload (owned model)")
	memStats := fs.Bool("stats", false, "after publishing, answer each stdin line with the owned memory stats (mem ...) until stdin EOF")
	timeout := fs.Duration("timeout", 5*time.Minute, "overall deadline")
	var tf typeFlags
	tf.register(fs)
	if err := fs.Parse(args); err != nil {
		return 2
	}
	if *size < 8 || *size > patternMax {
		return childFail("pub", "size %d out of range", *size)
	}
	ctx, cancel := context.WithTimeout(context.Background(), *timeout)
	defer cancel()
	stdin := bufio.NewReader(os.Stdin)

	pub, err := publisher.New(ctx, *topic, publisher.Options{Socket: *socket, History: *history, BlockTimeout: *blockTimeout,
		TypeName: tf.name, TypeSize: uint32(tf.size), TypeAlign: uint32(tf.align), MaxPayload: *maxPayload})
	if err != nil {
		return childFail("pub", "new publisher: %v", err)
	}
	defer pub.Close()
	fmt.Println("ready")
	if err := waitFor(ctx, func() bool { return pub.Subscribers() >= *subs }); err != nil {
		return childFail("pub", "wait for %d subscribers (have %d): %v", *subs, pub.Subscribers(), err)
	}
	var crc uint32
	for i := 1; i <= *n; i++ {
		if i-1 == *pauseAt && *pauseAt > 0 {
			fmt.Println("paused")
			if _, err := stdin.ReadString('\n'); err != nil {
				return childFail("pub", "read resume line: %v", err)
			}
		}
		c, err := pub.Loan(*size)
		if err != nil {
			return childFail("pub", "loan %d: %v", i, err)
		}
		b := c.Bytes()
		fill(b, uint64(i))
		crc = crc32.Update(crc, crcTable, b)
		if *maps {
			m, err := mappingOf(b)
			if err != nil {
				return childFail("pub", "mapping of chunk %d: %v", i, err)
			}
			fmt.Printf("map %d %s %d %d %s\n", i, m.Dev, m.Inode, m.FileOff, m.Path)
		}
		if err := pub.Publish(c); err != nil {
			return childFail("pub", "publish %d: %v", i, err)
		}
	}
	fmt.Printf("result %d %d %d %d\n", pub.ID(), *n, crc, pub.Subscribers())
	if *memStats {
		for {
			if _, err := stdin.ReadString('\n'); err != nil {
				break // EOF: done
			}
			st := pub.Stats()
			m := st.Memory
			fmt.Printf("mem %d %d %d %d %d %d %d\n", m.Chunks, m.Free, m.InUse, m.Outstanding, st.Subscribers, m.Reclaimed, m.Loans)
		}
	}
	if *hold {
		if _, err := io.Copy(io.Discard, stdin); err != nil {
			return childFail("pub", "wait for stdin EOF: %v", err)
		}
	}
	if err := pub.Close(); err != nil {
		return childFail("pub", "close: %v", err)
	}
	return 0
}

type pubStats struct {
	count, first, last uint64
	crc                uint32
}

func subMain(args []string) int {
	fs := flag.NewFlagSet("sub", flag.ContinueOnError)
	socket := fs.String("socket", "", "router socket")
	topic := fs.String("topic", "t", "topic")
	n := fs.Int("n", 0, "samples to receive (with -drain: none expected beyond what is queued)")
	qcap := fs.Int("qcap", 0, "queue capacity")
	history := fs.Int("history", 0, "history to ask for")
	policy := fs.String("policy", "block", "block or discard")
	waitPubs := fs.Int("wait-pubs", 0, "print connected once this many publishers are connected")
	gate := fs.Bool("gate", false, "after connected, wait for a stdin line before taking")
	drain := fs.Bool("drain", false, "take with TryTake until no data instead of exactly -n samples")
	lossy := fs.Bool("lossy", false, "sequence numbers need only increase (discard-oldest)")
	first := fs.Uint64("first", 1, "first sequence number expected from each publisher")
	exact := fs.Bool("exact", false, "after -n samples, require that nothing more is queued")
	maps := fs.Bool("maps", false, "print the mapping of every sample")
	incompatible := fs.Bool("expect-incompatible", false, "require New to fail with ErrIncompatibleType")
	spin := fs.Duration("spin", 0, "spin budget before sleeping (0: default, negative: none)")
	keep := fs.Int("keep", 0, "keep the first samples taken without releasing them; after -n samples print holding and wait for stdin EOF")
	roCheck := fs.Bool("ro-check", false, "after the first sample, try to write its memory (reopen its fd O_RDWR, mprotect PROT_WRITE, pwrite) and print ro <reopen> <mprotect> <pwrite> errors")
	timeout := fs.Duration("timeout", 5*time.Minute, "overall deadline")
	var tf typeFlags
	tf.register(fs)
	if err := fs.Parse(args); err != nil {
		return 2
	}
	pol := subscriber.BlockProducer
	if *policy == "discard" {
		pol = subscriber.DiscardOldest
	}
	ctx, cancel := context.WithTimeout(context.Background(), *timeout)
	defer cancel()
	stdin := bufio.NewReader(os.Stdin)

	sub, err := subscriber.New(ctx, *topic, subscriber.Options{Socket: *socket, QueueCapacity: *qcap, History: *history, Policy: pol, Spin: *spin,
		TypeName: tf.name, TypeSize: uint32(tf.size), TypeAlign: uint32(tf.align)})
	if *incompatible {
		if err == nil {
			sub.Close()
			return childFail("sub", "New succeeded, want an error wrapping ErrIncompatibleType")
		}
		if !errors.Is(err, parallax.ErrIncompatibleType) {
			return childFail("sub", "New: %v, want an error wrapping ErrIncompatibleType", err)
		}
		fmt.Printf("incompatible %s\n", err)
		return 0
	}
	if err != nil {
		return childFail("sub", "new subscriber: %v", err)
	}
	defer sub.Close()
	fmt.Println("ready")
	if *waitPubs > 0 {
		if err := waitFor(ctx, func() bool { return sub.Publishers() >= *waitPubs }); err != nil {
			return childFail("sub", "wait for %d publishers (have %d): %v", *waitPubs, sub.Publishers(), err)
		}
		fmt.Println("connected")
	}
	if *gate {
		if _, err := stdin.ReadString('\n'); err != nil {
			return childFail("sub", "read gate line: %v", err)
		}
	}

	stats := map[uint32]*pubStats{}
	total := 0
	var kept []subscriber.Sample
	roChecked := false
	handle := func(x subscriber.Sample) error {
		if len(kept) < *keep {
			kept = append(kept, x)
		} else {
			defer func() { _ = x.Release() }()
		}
		if *roCheck && !roChecked {
			roChecked = true
			reopen, prot, pw := tryWrite(x.Bytes())
			fmt.Printf("ro %s %s %s\n", errName(reopen), errName(prot), errName(pw))
			if m, err := mappingOf(x.Bytes()); err == nil {
				fmt.Printf("romap %s\n", m.Path) // what backs it (memfd or file)
			}
		}
		h := x.Header()
		b := x.Bytes()
		st := stats[h.PublisherID]
		if st == nil {
			st = &pubStats{first: h.Seq}
			stats[h.PublisherID] = st
			if !*lossy && h.Seq != *first {
				return fmt.Errorf("publisher %d: first seq %d, want %d", h.PublisherID, h.Seq, *first)
			}
		} else if *lossy && h.Seq <= st.last {
			return fmt.Errorf("publisher %d: seq %d after %d (not increasing)", h.PublisherID, h.Seq, st.last)
		} else if !*lossy && h.Seq != st.last+1 {
			return fmt.Errorf("publisher %d: seq %d after %d (loss, duplicate or reorder)", h.PublisherID, h.Seq, st.last)
		}
		if err := verify(b, h.Seq); err != nil {
			return fmt.Errorf("publisher %d: %w", h.PublisherID, err)
		}
		if *maps {
			m, err := mappingOf(b)
			if err != nil {
				return fmt.Errorf("mapping of sample %d: %w", h.Seq, err)
			}
			fmt.Printf("map %d %s %d %d %s\n", h.Seq, m.Dev, m.Inode, m.FileOff, m.Path)
		}
		st.last = h.Seq
		st.count++
		st.crc = crc32.Update(st.crc, crcTable, b)
		total++
		return nil
	}
	if *drain {
		for {
			// Take, not TryTake: a queued ref whose data segment grant
			// is still on its way is pending (TryTake says ErrNoData and
			// asks for the segment; a CI run drained nothing that way).
			// Drained once nothing comes for drainIdle.
			x, err := sub.TakeTimeout(drainIdle)
			if errors.Is(err, parallax.ErrTimeout) {
				break
			}
			if err != nil {
				return childFail("sub", "take after %d: %v", total, err)
			}
			if err := handle(x); err != nil {
				return childFail("sub", "%v", err)
			}
		}
	} else {
		for total < *n {
			x, err := sub.Take(ctx)
			if err != nil {
				return childFail("sub", "take %d of %d: %v", total+1, *n, err)
			}
			if err := handle(x); err != nil {
				return childFail("sub", "%v", err)
			}
		}
		if *exact {
			if x, err := sub.TryTake(); !errors.Is(err, subscriber.ErrNoData) {
				if err == nil {
					_ = x.Release()
					return childFail("sub", "sample seq %d queued beyond the %d expected", x.Header().Seq, *n)
				}
				return childFail("sub", "try take after %d: %v", *n, err)
			}
		}
	}
	if *keep > 0 {
		fmt.Printf("holding %d\n", len(kept))
		if _, err := io.Copy(io.Discard, stdin); err != nil {
			return childFail("sub", "wait for stdin EOF: %v", err)
		}
		for _, x := range kept {
			_ = x.Release()
		}
	}
	ids := make([]uint32, 0, len(stats))
	for id := range stats {
		ids = append(ids, id)
	}
	sort.Slice(ids, func(i, j int) bool { return ids[i] < ids[j] })
	for _, id := range ids {
		st := stats[id]
		fmt.Printf("pub %d %d %d %d %d\n", id, st.count, st.crc, st.first, st.last)
	}
	fmt.Printf("dropped %d\n", sub.Dropped())
	fmt.Printf("publishers %d\n", sub.Publishers())
	fmt.Printf("done %d\n", total)
	if err := sub.Close(); err != nil {
		return childFail("sub", "close: %v", err)
	}
	return 0
}

// drainIdle is how long a -drain subscriber waits for one more sample
// before it counts its queue as drained.
const drainIdle = time.Second
