//go:build linux

package bench_test

import (
	"context"
	"fmt"
	"os"
	"strconv"
	"testing"
	"time"

	"github.com/parallax-ipc/parallax/internal/routertest"
	"github.com/parallax-ipc/parallax/publisher"
	"github.com/parallax-ipc/parallax/subscriber"
)

// BenchmarkConnect measures connection set-up and tear-down across
// processes without streaming anything: pubs child processes each publish
// topics topics (64 B declared, as the grid's publishers do); each
// iteration this process subscribes to every topic, one after another,
// waits until each has its pubs publishers, then closes them all (a
// subscriber with several publishers releases several connections). A
// subscriber on another topic stays open throughout, so the control
// connection is not re-established per iteration. Per connection (topics
// x pubs) it reports new-us/conn (New plus WaitForPublishers),
// close-us/conn (Close, which waits for its releases), self-cpu-us/conn
// (this process: the in-process router and the subscribing client) and
// pub-cpu-us/conn (the publisher processes). With -cpuprofile the
// router's share is the roudi frames; with PARALLAX_BENCH_GRID_PROFILE=dir
// the publisher processes write their CPU profiles there
// (conn-pub-PID.pprof).
//
//	go test -run='^$' -bench=Connect -benchtime=20x ./tests/bench
func BenchmarkConnect(b *testing.B) {
	for _, c := range []struct{ topics, pubs int }{{1, 1}, {100, 1}, {1, 8}} {
		b.Run(fmt.Sprintf("topics=%d/pubs=%d", c.topics, c.pubs), func(b *testing.B) {
			benchConnect(b, c.topics, c.pubs)
		})
	}
}

func benchConnect(b *testing.B, topics, pubs int) {
	srv := routertest.Start(b, gridConfig)
	sock := srv.SocketPath()
	roles := cpuRoles{}
	for i := range pubs {
		pub := startLineChild(b, "conn-pub", sock, strconv.Itoa(topics))
		pub.expect(b, "ready", 0)
		roles[fmt.Sprintf("pub%d", i)] = pub.cmd.Process.Pid
	}
	ctx, cancel := context.WithTimeout(context.Background(), childTimeout)
	hold, err := subscriber.New(ctx, "conn-hold", subscriber.Options{Socket: sock})
	cancel()
	if err != nil {
		b.Fatal(err)
	}
	defer hold.Close()
	subs := make([]*subscriber.Subscriber, topics)
	var newT, closeT time.Duration
	before := roles.sample()
	for b.Loop() {
		ctx, cancel := context.WithTimeout(context.Background(), childTimeout)
		t0 := time.Now()
		for i := range subs {
			s, err := subscriber.New(ctx, connTopic(i), subscriber.Options{Socket: sock, QueueCapacity: gridQueue, Policy: subscriber.BlockProducer})
			if err != nil {
				b.Fatal(err)
			}
			subs[i] = s
			if err := s.WaitForPublishers(ctx, pubs); err != nil {
				b.Fatal(err)
			}
		}
		t1 := time.Now()
		for _, s := range subs {
			if err := s.Close(); err != nil {
				b.Fatal(err)
			}
		}
		newT += t1.Sub(t0)
		closeT += time.Since(t1)
		cancel()
	}
	after := roles.sample()
	var pubCPU time.Duration
	for role := range roles {
		pubCPU += after[role] - before[role]
	}
	conns := float64(b.N * topics * pubs)
	us := func(d time.Duration) float64 { return float64(d.Microseconds()) / conns }
	b.ReportMetric(us(newT), "new-us/conn")
	b.ReportMetric(us(closeT), "close-us/conn")
	b.ReportMetric(us(after["self"]-before["self"]), "self-cpu-us/conn")
	b.ReportMetric(us(pubCPU), "pub-cpu-us/conn")
}

// connTopic names topic i of BenchmarkConnect.
func connTopic(i int) string { return "conn" + strconv.Itoa(i) }

// connPubMain is the publisher process of BenchmarkConnect. Arguments:
// socket, topics. It publishes topics conn0..conn<topics-1>, prints
// "ready" and serves until stdin closes (profiled as the grid's children
// are, see gridProfile).
func connPubMain(args []string) int {
	if len(args) != 2 {
		fmt.Fprintln(os.Stderr, "conn-pub: want socket topics")
		return 2
	}
	n, _ := strconv.Atoi(args[1])
	ctx, cancel := context.WithTimeout(context.Background(), childTimeout)
	defer cancel()
	for i := range n {
		p, err := publisher.New(ctx, connTopic(i), gridPubOptions(args[0], 64, 1))
		if err != nil {
			fmt.Fprintln(os.Stderr, "conn-pub:", err)
			return 1
		}
		defer p.Close()
	}
	fmt.Println("ready")
	stopProfile := gridProfile("conn-pub")
	defer stopProfile()
	untilStdinCloses()
	return 0
}
