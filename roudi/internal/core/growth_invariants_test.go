package core

import (
	"fmt"
	"math/rand/v2"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/parallax-ipc/parallax"
	"github.com/parallax-ipc/parallax/internal/testutil"
)

// checkGrowth verifies that the growth accounting covers exactly the pools
// that exist or are being created: bytes of pools not retired, areas of
// every pool (retired ones keep theirs for the run), and the limits.
func (r *Router) checkGrowth() error {
	g := &r.growth
	var live, ded uint64
	grown := make([]bool, len(g.grownUsed))
	dedicated := make([]bool, len(g.dedUsed))
	for id, p := range g.pools {
		if p.id != id {
			return fmt.Errorf("pool %d indexed as %d", p.id, id)
		}
		used := grown
		if p.dedicated() {
			used = dedicated
		}
		if p.area < 0 || p.area >= len(used) || used[p.area] {
			return fmt.Errorf("pool %d: area %d out of range or claimed twice", id, p.area)
		}
		used[p.area] = true
		if p.state == poolRetired {
			continue
		}
		live += p.bytes
		if p.dedicated() {
			ded += p.bytes
		}
	}
	for i := range grown {
		if grown[i] != g.grownUsed[i] {
			return fmt.Errorf("grown area %d: marked used %v, pool present %v", i, g.grownUsed[i], grown[i])
		}
	}
	for i := range dedicated {
		if dedicated[i] != g.dedUsed[i] {
			return fmt.Errorf("dedicated area %d: marked used %v, pool present %v", i, g.dedUsed[i], dedicated[i])
		}
	}
	if live != g.liveBytes || ded != g.dedBytes {
		return fmt.Errorf("accounted %d live and %d dedicated bytes, pools hold %d and %d", g.liveBytes, g.dedBytes, live, ded)
	}
	if lim := r.cfg.Growth; live > lim.MaxTotalBytes && live > 0 || ded > lim.MaxDedicatedBytes && ded > 0 {
		return fmt.Errorf("%d live and %d dedicated bytes exceed the limits %d and %d", live, ded, lim.MaxTotalBytes, lim.MaxDedicatedBytes)
	}
	return nil
}

// TestRandomGrowthKeepsAccounting drives growth with random requests,
// creation failures, free-chunk reports and contested retirements, acting
// as the server would (every CreatePool and RetirePool is reported back),
// and checks after each step that the accounting covers exactly what
// exists (checkGrowth, via do), that every GrowPool and GetSegments is
// answered exactly once, that no pool is created twice while it exists,
// and that a retired pool's id never comes back.
func TestRandomGrowthKeepsAccounting(t *testing.T) {
	t.Parallel()
	rng := testutil.Rand(t)
	for run := range 20 {
		t.Run(fmt.Sprint(run), func(t *testing.T) {
			randomGrowthRun(t, rand.New(rand.NewPCG(rng.Uint64(), rng.Uint64())), 300)
		})
	}
}

func randomGrowthRun(t *testing.T, rng *rand.Rand, steps int) {
	rules := Growth{Enabled: true, MaxSegmentsPerPool: 1 + rng.IntN(3), MaxTotalBytes: uint64(2048 + rng.IntN(8192))}
	rules.MaxDedicatedBytes = uint64(rng.IntN(int(rules.MaxTotalBytes) + 1))
	sg := scriptGrowth{classes: []PoolClass{{ChunkSize: 256, Count: 4}, {ChunkSize: 512, Count: 2}}, dedicated: 1 + rng.IntN(4)}
	r := newTestRouter(t, func(c *Rules) { c.Growth = rules }, RouterOptions{Pools: sg.layout(rules)})
	var reqID uint32
	exists := map[uint16]bool{}  // created and not failed or retired
	retired := map[uint16]bool{} // never to come back
	var pending []Event          // the server's reports, stepped one per step
	for range steps {
		conn := ConnID(1 + rng.IntN(4))
		var ev Event
		switch k := rng.IntN(12); {
		case len(pending) > 0 && k < 6:
			ev, pending = pending[0], pending[1:]
		case k < 2:
			ev = ClientConnected{Conn: conn, PID: int32(conn)}
		case k < 3:
			reqID++
			ev = ClientRequest{Conn: conn, ReqID: reqID, Req: CreatePublisher{Topic: "t", Type: typT}}
		case k < 7:
			reqID++
			var known []uint16
			for id := range exists {
				if rng.IntN(2) == 0 {
					known = append(known, id)
				}
			}
			ev = ClientRequest{Conn: conn, ReqID: reqID, Req: GrowPool{Size: uint64(1 + rng.IntN(1200)), Known: known}}
		case k < 8:
			reqID++
			ev = ClientRequest{Conn: conn, ReqID: reqID, Req: GetSegments{Pool: uint16(rng.IntN(16)), ReadOnly: rng.IntN(2) == 0}}
		case k < 10:
			var free []uint16
			for id := range exists {
				if rng.IntN(2) == 0 {
					free = append(free, id) // grown ones too: the core must ignore them
				}
			}
			ev = DedicatedFree{Pools: free}
		case k < 11:
			ev = ClientDisconnected{Conn: conn}
		default:
			ev = Tick{}
		}
		as := do(t, r, ev)
		req, isReq := ev.(ClientRequest)
		replies := 0
		for _, a := range as {
			switch a := a.(type) {
			case Reply:
				if isReq && a.ReqID == req.ReqID {
					replies++
				}
			case CreatePool:
				require.False(t, exists[a.Pool], "pool %d created twice", a.Pool)
				require.False(t, retired[a.Pool], "retired pool id %d reused", a.Pool)
				require.Equal(t, 0, replies, "a reply before the creation's report")
				replies++ // answered by the report
				if rng.IntN(4) == 0 {
					pending = append(pending, PoolCreated{Pool: a.Pool, Err: fmt.Errorf("no memory: %w", parallax.ErrPoolExhausted)})
				} else {
					exists[a.Pool] = true
					pending = append(pending, PoolCreated{Pool: a.Pool, Ref: 1})
				}
			case RetirePool:
				held := rng.IntN(3) == 0
				if !held {
					delete(exists, a.Pool)
					retired[a.Pool] = true
				}
				pending = append(pending, PoolRetired{Pool: a.Pool, Held: held})
			}
		}
		if isReq {
			require.Equal(t, 1, replies, "%#v -> %v", ev, as)
		}
	}
}
