package clientrt

import (
	"context"
	"fmt"
	"maps"
	"sync"
	"time"

	"github.com/parallax-ipc/parallax/internal/wire"
)

// Memory reports (owned model, docs/design/memory-ownership.md §6): only a
// publisher's process knows how many of its chunks are in use, and the
// router never reads client memory to find out; nor does it see an owned
// ring move, so the publishers' message counters (published, delivered,
// dropped, unconnected, removed connections) ride along. The runtime
// reports them with wire.ReportMemory, every MemoryReportInterval, only
// the publishers whose figures changed since the last accepted report (an
// idle process sends nothing), with the traffic of their connections that
// changed, and once more for a publisher that closes (ReportFinal). The
// router shows them in `parallax pools`, `parallax topics`, `parallax
// connections`, `parallax top` and its metrics.

// MemoryReportInterval is how often the runtime reports its owned
// publishers' chunk accounting to the router (while it changes).
const MemoryReportInterval = time.Second

// memoryReportTimeout bounds one report's round trip.
const memoryReportTimeout = 2 * time.Second

// FinalReportTimeout bounds the report of a closing publisher
// ([Runtime.ReportFinal]).
const FinalReportTimeout = time.Second

// MemoryReporter is a publisher endpoint of the owned model that can tell
// its own chunk accounting and message counters; false when it has none
// (closed). ConnReports appends the traffic of its live connections to
// dst, as counted now; the runtime calls it right after MemoryReport, whose
// drain brought the returns up to date.
type MemoryReporter interface {
	MemoryReport() (wire.PubMemory, bool)
	ConnReports(dst []wire.ConnTraffic) []wire.ConnTraffic
}

// memReporter is the runtime's reporting goroutine, started with the
// first MemoryReporter endpoint.
type memReporter struct {
	once    sync.Once
	stop    chan struct{}
	stopped sync.Once
	wg      sync.WaitGroup
}

// startMemoryReports starts the reporting goroutine once.
func (rt *Runtime) startMemoryReports() {
	rt.mem.once.Do(func() {
		rt.mem.stop = make(chan struct{})
		rt.mem.wg.Add(1)
		go rt.memoryReports()
	})
}

// stopMemoryReports ends the reporting goroutine and waits for it.
func (rt *Runtime) stopMemoryReports() {
	rt.mem.once.Do(func() {}) // no start after this
	if rt.mem.stop == nil {
		return
	}
	rt.mem.stopped.Do(func() { close(rt.mem.stop) })
	rt.mem.wg.Wait()
}

func (rt *Runtime) memoryReports() {
	defer rt.mem.wg.Done()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go func() {
		<-rt.mem.stop
		cancel()
	}()
	t := time.NewTicker(MemoryReportInterval)
	defer t.Stop()
	last := map[uint32]wire.PubMemory{}
	lastConn := map[uint32]wire.ConnTraffic{}
	for {
		select {
		case <-rt.mem.stop:
			return
		case <-t.C:
		}
		rt.reportMemoryOnce(ctx, last, lastConn)
	}
}

// reportMemoryOnce sends what changed since the last accepted report
// (publishers in last, connections in lastConn), in messages of at most
// wire.MaxMemoryReports publishers and wire.MaxConnReports connections.
func (rt *Runtime) reportMemoryOnce(ctx context.Context, last map[uint32]wire.PubMemory, lastConn map[uint32]wire.ConnTraffic) {
	rt.mu.Lock()
	eps := make(map[uint32]MemoryReporter, len(rt.pubs))
	for id, ep := range rt.pubs {
		if r, ok := ep.(MemoryReporter); ok {
			eps[id] = r
		}
	}
	rt.mu.Unlock()
	maps.DeleteFunc(last, func(id uint32, _ wire.PubMemory) bool { return eps[id] == nil })
	var batch []wire.PubMemory
	var conns, all []wire.ConnTraffic
	live := map[uint32]bool{}
	send := func() {
		if len(batch) == 0 && len(conns) == 0 {
			return
		}
		rctx, cancel := context.WithTimeout(ctx, memoryReportTimeout)
		_, files, err := rt.Request(rctx, &wire.ReportMemory{Publishers: batch, Conns: conns})
		cancel()
		closeAll(files)
		if err == nil {
			for _, m := range batch {
				last[m.PubID] = m
			}
			for _, c := range conns {
				lastConn[c.ConnID] = c
			}
		}
		batch, conns = batch[:0], conns[:0]
	}
	for id, ep := range eps {
		m, ok := ep.MemoryReport()
		if !ok || m.PubID != id {
			continue
		}
		if last[id] != m {
			batch = append(batch, m)
		}
		all = ep.ConnReports(all[:0])
		for _, c := range all {
			live[c.ConnID] = true
			if prev, ok := lastConn[c.ConnID]; ok && prev == c {
				continue
			}
			conns = append(conns, c)
			if len(conns) == wire.MaxConnReports {
				send()
			}
		}
		if len(batch) == wire.MaxMemoryReports {
			send()
		}
	}
	send()
	maps.DeleteFunc(lastConn, func(id uint32, _ wire.ConnTraffic) bool { return !live[id] })
}

// ReportFinal reports r's figures now, once: a closing publisher calls it
// before it tells the router it is gone, so what it counted since the last
// periodic report (everything, for a publisher that lived less than
// MemoryReportInterval) is not lost. The router keeps a departed
// publisher's last report in its topic's counters. It waits at most
// FinalReportTimeout; a router that is gone fails it at once (IsClosed).
// The error is for the caller to log or ignore: the report is
// informational, and Close succeeds without it.
func (rt *Runtime) ReportFinal(r MemoryReporter) error {
	m, ok := r.MemoryReport()
	if !ok {
		return nil
	}
	ctx, cancel := context.WithTimeout(context.Background(), FinalReportTimeout)
	defer cancel()
	_, files, err := rt.Request(ctx, &wire.ReportMemory{Publishers: []wire.PubMemory{m}})
	closeAll(files)
	if err != nil {
		return fmt.Errorf("report final counters of publisher %d: %w", m.PubID, err)
	}
	return nil
}
