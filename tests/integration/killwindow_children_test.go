//go:build integration

package integration

import (
	"bufio"
	"context"
	"errors"
	"flag"
	"fmt"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/parallax-ipc/parallax/internal/ownedpub"
	"github.com/parallax-ipc/parallax/internal/ownedsub"
	"github.com/parallax-ipc/parallax/internal/testhook"
	"github.com/parallax-ipc/parallax/publisher"
	"github.com/parallax-ipc/parallax/subscriber"
)

// The kill-window children (killwindow_test.go) run one publisher ("kwpub")
// or one subscriber ("kwsub") driven line by line from stdin, so the test
// decides exactly what each process does before it arms a hook
// (internal/testhook.Arm) and makes it reach it. Every command answers one
// stdout line; a failure (a lost, duplicated or corrupt sample included)
// ends the child with an error on stderr.
//
//	kwpub: "ready <pubID>" (or, with -new-err, "newerr <error>" when New
//	       fails); pub <n> → "ok <lastSeq>"; subs <n> (wait until
//	       n subscribers) → "subs"; arm <hook> → "armed"; stats →
//	       "mem <chunks> <free> <inUse> <outstanding> <subscribers>
//	       <reclaimed> <loans> <history>"; garbage (push a garbage ref into
//	       every data ring, hostile_owned_children_test.go) → "garbage <n>";
//	       with -tolerate-bad a Publish that fails a connection prints
//	       "badconn <conn>" and goes on.
//	kwsub: "ready"; take <n> (take n, keep them held) → "took <n>";
//	       release (every held sample) → "released"; drain (take what is
//	       queued, release each) → "drained <n>"; held → "held <n>";
//	       pubs <n> (wait until n live publishers) → "pubs"; seen <pubID>
//	       → "seen <count> <lastSeq>"; arm <hook> → "armed"; forge (push a
//	       garbage ref into every return ring) → "forged <n>"; close →
//	       "closed". With -tolerate-bad a take that fails a connection
//	       prints "badconn <conn>" and goes on.
func init() {
	childRoles["kwpub"] = kwPubMain
	childRoles["kwsub"] = kwSubMain
}

// kwDeadline bounds each command of a kill-window child.
const kwDeadline = 30 * time.Second

func kwPubMain(args []string) int {
	fs := flag.NewFlagSet("kwpub", flag.ContinueOnError)
	socket := fs.String("socket", "", "router socket")
	topic := fs.String("topic", "t", "topic")
	history := fs.Int("history", 0, "history depth")
	size := fs.Int("size", 256, "payload size")
	newErr := fs.Bool("new-err", false, "if New fails, print newerr <error> and exit 0")
	tolerate := fs.Bool("tolerate-bad", false, "a Publish failing a connection (its subscriber's forged return) prints badconn and goes on")
	if err := fs.Parse(args); err != nil {
		return 2
	}
	ctx, cancel := context.WithTimeout(context.Background(), kwDeadline)
	pub, err := publisher.New(ctx, *topic, publisher.Options{Socket: *socket, History: *history, BlockTimeout: kwDeadline})
	cancel()
	if err != nil && *newErr {
		fmt.Printf("newerr %v\n", err)
		return 0
	}
	if err != nil {
		return childFail("kwpub", "new publisher: %v", err)
	}
	defer pub.Close()
	fmt.Printf("ready %d\n", pub.ID())
	var seq uint64
	in := bufio.NewScanner(os.Stdin)
	for in.Scan() {
		f := strings.Fields(in.Text())
		if len(f) == 0 {
			continue
		}
		arg := 0
		if len(f) > 1 {
			arg, _ = strconv.Atoi(f[1])
		}
		switch f[0] {
		case "pub":
			for range arg {
				c, err := pub.Loan(*size)
				if err != nil {
					return childFail("kwpub", "loan %d: %v", seq+1, err)
				}
				seq++
				fill(c.Bytes(), seq)
				if err := pub.Publish(c); err != nil {
					var ce *ownedpub.ConnError
					if !*tolerate || !errors.As(err, &ce) {
						return childFail("kwpub", "publish %d: %v", seq, err)
					}
					fmt.Printf("badconn %d\n", ce.Conn)
				}
			}
			fmt.Printf("ok %d\n", seq)
		case "subs":
			ctx, cancel := context.WithTimeout(context.Background(), kwDeadline)
			err := waitFor(ctx, func() bool { return pub.Subscribers() >= arg })
			cancel()
			if err != nil {
				return childFail("kwpub", "wait for %d subscribers (have %d): %v", arg, pub.Subscribers(), err)
			}
			fmt.Println("subs")
		case "arm":
			testhook.Arm(f[1])
			fmt.Println("armed")
		case "garbage":
			n, err := pushGarbage(true)
			if err != nil {
				return childFail("kwpub", "garbage: %v", err)
			}
			fmt.Printf("garbage %d\n", n)
		case "stats":
			st := pub.Stats()
			m := st.Memory
			fmt.Printf("mem %d %d %d %d %d %d %d %d\n", m.Chunks, m.Free, m.InUse, m.Outstanding, st.Subscribers, m.Reclaimed, m.Loans, m.History)
		default:
			return childFail("kwpub", "unknown command %q", in.Text())
		}
	}
	if err := pub.Close(); err != nil {
		return childFail("kwpub", "close: %v", err)
	}
	return 0
}

func kwSubMain(args []string) int {
	fs := flag.NewFlagSet("kwsub", flag.ContinueOnError)
	socket := fs.String("socket", "", "router socket")
	topic := fs.String("topic", "t", "topic")
	idleTopic := fs.String("idle-topic", "", "also subscribe to this topic and never take from it")
	qcap := fs.Int("qcap", 64, "queue capacity")
	history := fs.Int("history", 0, "history to ask for")
	policy := fs.String("policy", "block", "block or discard")
	anyFirst := fs.Bool("any-first", false, "a publisher's first sample may have any seq (a late joiner)")
	tolerate := fs.Bool("tolerate-bad", false, "a take failing a connection (its publisher's garbage ref) prints badconn and goes on")
	if err := fs.Parse(args); err != nil {
		return 2
	}
	pol := subscriber.BlockProducer
	lossy := *policy == "discard"
	if lossy {
		pol = subscriber.DiscardOldest
	}
	ctx, cancel := context.WithTimeout(context.Background(), kwDeadline)
	sub, err := subscriber.New(ctx, *topic, subscriber.Options{Socket: *socket, QueueCapacity: *qcap, History: *history, Policy: pol})
	if err == nil && *idleTopic != "" {
		var idle *subscriber.Subscriber
		idle, err = subscriber.New(ctx, *idleTopic, subscriber.Options{Socket: *socket, QueueCapacity: 4})
		if err == nil {
			defer idle.Close()
		}
	}
	cancel()
	if err != nil {
		return childFail("kwsub", "new subscriber: %v", err)
	}
	defer sub.Close()
	fmt.Println("ready")

	seen := map[uint32]*pubStats{}
	var held []subscriber.Sample
	// check verifies x: its payload is its seq's, and per publisher the
	// seqs run 1, 2, 3, ... (only increase, with discard-oldest).
	check := func(x subscriber.Sample) error {
		h := x.Header()
		st := seen[h.PublisherID]
		switch {
		case st == nil && !lossy && !*anyFirst && h.Seq != 1:
			return fmt.Errorf("publisher %d: first seq %d, want 1", h.PublisherID, h.Seq)
		case st != nil && lossy && h.Seq <= st.last:
			return fmt.Errorf("publisher %d: seq %d after %d", h.PublisherID, h.Seq, st.last)
		case st != nil && !lossy && h.Seq != st.last+1:
			return fmt.Errorf("publisher %d: seq %d after %d (loss, duplicate or reorder)", h.PublisherID, h.Seq, st.last)
		}
		if err := verify(x.Bytes(), h.Seq); err != nil {
			return fmt.Errorf("publisher %d: %w", h.PublisherID, err)
		}
		if st == nil {
			st = &pubStats{first: h.Seq}
			seen[h.PublisherID] = st
		}
		st.last = h.Seq
		st.count++
		return nil
	}
	// bad reports a connection failure a tolerant child goes on after.
	bad := func(err error) bool {
		var ce *ownedsub.ConnError
		if *tolerate && errors.As(err, &ce) {
			fmt.Printf("badconn %d\n", ce.Conn)
			return true
		}
		return false
	}
	in := bufio.NewScanner(os.Stdin)
	for in.Scan() {
		f := strings.Fields(in.Text())
		if len(f) == 0 {
			continue
		}
		arg := 0
		if len(f) > 1 {
			arg, _ = strconv.Atoi(f[1])
		}
		switch f[0] {
		case "take":
			for i := 0; i < arg; i++ {
				ctx, cancel := context.WithTimeout(context.Background(), kwDeadline)
				x, err := sub.Take(ctx)
				cancel()
				if err != nil && bad(err) {
					i--
					continue
				}
				if err != nil {
					return childFail("kwsub", "take %d of %d: %v", i+1, arg, err)
				}
				if err := check(x); err != nil {
					return childFail("kwsub", "%v", err)
				}
				held = append(held, x)
			}
			fmt.Printf("took %d\n", arg)
		case "release":
			for _, x := range held {
				if err := x.Release(); err != nil {
					return childFail("kwsub", "release seq %d: %v", x.Header().Seq, err)
				}
			}
			held = held[:0]
			fmt.Println("released")
		case "drain":
			n := 0
			for {
				x, err := sub.TryTake()
				if errors.Is(err, subscriber.ErrNoData) {
					break
				}
				if err != nil && bad(err) {
					continue
				}
				if err != nil {
					return childFail("kwsub", "try take after %d: %v", n, err)
				}
				if err := check(x); err != nil {
					return childFail("kwsub", "%v", err)
				}
				if err := x.Release(); err != nil {
					return childFail("kwsub", "release seq %d: %v", x.Header().Seq, err)
				}
				n++
			}
			fmt.Printf("drained %d\n", n)
		case "held":
			fmt.Printf("held %d\n", len(held))
		case "pubs":
			ctx, cancel := context.WithTimeout(context.Background(), kwDeadline)
			err := waitFor(ctx, func() bool { return sub.Publishers() == arg })
			cancel()
			if err != nil {
				return childFail("kwsub", "wait for %d publishers (have %d): %v", arg, sub.Publishers(), err)
			}
			fmt.Println("pubs")
		case "seen":
			st := seen[uint32(arg)]
			if st == nil {
				st = &pubStats{}
			}
			fmt.Printf("seen %d %d\n", st.count, st.last)
		case "arm":
			testhook.Arm(f[1])
			fmt.Println("armed")
		case "forge":
			n, err := pushGarbage(false)
			if err != nil {
				return childFail("kwsub", "forge: %v", err)
			}
			fmt.Printf("forged %d\n", n)
		case "close":
			if err := sub.Close(); err != nil {
				return childFail("kwsub", "close: %v", err)
			}
			fmt.Println("closed")
		default:
			return childFail("kwsub", "unknown command %q", in.Text())
		}
	}
	for _, x := range held {
		_ = x.Release()
	}
	if err := sub.Close(); err != nil && !errors.Is(err, os.ErrClosed) {
		return childFail("kwsub", "close: %v", err)
	}
	return 0
}
