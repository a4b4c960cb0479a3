package core

import (
	"errors"
	"fmt"
	"strconv"
	"strings"
)

// scriptGrowth is the scripts' pool layout: configured classes and the
// number of dedicated areas (growth.txt).
type scriptGrowth struct {
	classes   []PoolClass // config pools=256x4,1024x2 (chunk size x count)
	dedicated int         // config dedicated_areas=N; default 4
}

// Fake management offsets of the scripts' reserved areas.
const (
	testGrownBase = 1 << 20
	testGrownSize = 4096
	testDedBase   = 2 << 20
	testDedSize   = 640
)

// growthConfig applies a growth config key; it reports whether k is one.
func (s *scriptState) growthConfig(k string, v int) bool {
	g := &s.cfg.Growth
	switch k {
	case "growth":
		g.Enabled = v != 0
	case "max_segments":
		g.MaxSegmentsPerPool = v
	case "max_total":
		g.MaxTotalBytes = uint64(v)
	case "max_dedicated":
		g.MaxDedicatedBytes = uint64(v)
	case "dedicated_areas":
		s.growth.dedicated = v
	default:
		return false
	}
	return true
}

func (g *scriptGrowth) layout(rules Growth) PoolLayout {
	l := PoolLayout{Base: g.classes, ChunkAlign: 64}
	if l.Base == nil {
		l.Base = []PoolClass{{ChunkSize: 256, Count: 4}}
	}
	if !rules.Enabled {
		return l
	}
	id := uint16(len(l.Base))
	for range l.Base {
		for range rules.MaxSegmentsPerPool {
			l.Grown = append(l.Grown, PoolArea{ID: id, Mgmt: Region{Offset: testGrownBase + uint64(len(l.Grown))*testGrownSize, Size: testGrownSize}})
			id++
		}
	}
	n := g.dedicated
	if n == 0 {
		n = 4
	}
	for k := range n {
		l.Dedicated = append(l.Dedicated, Region{Offset: testDedBase + uint64(k)*testDedSize, Size: testDedSize})
	}
	return l
}

// growthCommand builds the event of a growth command, or returns its
// output directly (nil event); ok is false for an unknown command.
func (s *scriptState) growthCommand(where, cmd string, kv map[string]string, conn func() ConnID, reqID func() uint32, ids func(string) []uint32) (Event, []string, bool) {
	t := s.t
	num := func(k string) uint64 {
		n, err := strconv.ParseUint(kv[k], 0, 64)
		if kv[k] == "" {
			return 0
		}
		if err != nil {
			t.Fatalf("%s: %s=%q: %v", where, k, kv[k], err)
		}
		return n
	}
	pools := func(k string) []uint16 {
		var out []uint16
		for _, id := range ids(k) {
			out = append(out, uint16(id))
		}
		return out
	}
	switch cmd {
	case "grow":
		return ClientRequest{Conn: conn(), ReqID: reqID(), Req: GrowPool{Size: num("size"), Known: pools("known")}}, nil, true
	case "getseg":
		return ClientRequest{Conn: conn(), ReqID: reqID(), Req: GetSegments{Pool: uint16(num("pool")), ReadOnly: kv["ro"] == "1"}}, nil, true
	case "created":
		ev := PoolCreated{Pool: uint16(num("pool")), Ref: num("ref")}
		if msg, ok := kv["err"]; ok {
			ev.Err = errors.New(strings.ReplaceAll(msg, "_", " "))
		}
		return ev, nil, true
	case "free":
		return DedicatedFree{Pools: pools("pools")}, nil, true
	case "retired":
		return PoolRetired{Pool: uint16(num("pool")), Held: kv["held"] == "1"}, nil, true
	case "growth":
		return nil, []string{s.router().Growth().String()}, true
	case "pools":
		if s.r != nil {
			t.Fatalf("%s: pools after the router started", where)
		}
		s.growth.classes = nil
		for c := range strings.SplitSeq(kv["classes"], ",") {
			size, count, _ := strings.Cut(c, "x")
			a, err1 := strconv.ParseUint(size, 10, 32)
			b, err2 := strconv.ParseUint(count, 10, 32)
			if err1 != nil || err2 != nil {
				t.Fatalf("%s: pools classes=%q: want SIZExCOUNT,...", where, kv["classes"])
			}
			s.growth.classes = append(s.growth.classes, PoolClass{ChunkSize: uint32(a), Count: uint32(b)})
		}
		return nil, nil, true
	}
	return nil, nil, false
}

func (g GrowthStats) String() string {
	return fmt.Sprintf("growth grown=%d dedicated=%d retired=%d live-bytes=%d dedicated-bytes=%d",
		g.Grown, g.Dedicated, g.Retired, g.LiveBytes, g.DedicatedBytes)
}
