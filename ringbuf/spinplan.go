package ringbuf

import (
	"sync/atomic"
	"time"

	"github.com/parallax-ipc/parallax/internal/sys"
)

// crowdedYield is how long a sched_yield must take to show that the
// processor went to another thread. On a core nobody else wants it returns
// at once (about 1.25 µs, system call included, on the PVM test VM); in
// BenchmarkFanOut 1→16 (17 processes on 2 cores) 97 % of the yields took
// over 10 µs, most of them 0.1–1 ms.
const crowdedYield = 5 * time.Microsecond

// A spinPlan is what a waiter (a [Notifier]'s consumer, a [Waiter]) learnt
// from its last yield: whether other threads wait for its processor.
// Process memory, touched only on the waiting path (after the first look
// found nothing). The atomic keeps a misused Wait (two goroutines at once)
// race-free; its load is a plain load, and it is stored only when it
// changes.
type spinPlan struct {
	crowded atomic.Bool
}

// spinThenYield is the phase of a Wait before it sleeps: ready is called
// for up to budget (sys.SpinUntil) and, if the budget was positive and the
// spin did not see it, once more after yielding the processor (one
// sched_yield). The yield matters when busy processes outnumber cores: a
// publisher with 16 subscriber processes on 2 cores then runs while a
// subscriber would otherwise sleep, so the subscriber finds the next
// samples without a wake-up (about 8 times fewer wake system calls and
// 1.7 times the delivered rate in BenchmarkFanOut 1→16; see
// docs/design/memory-ownership.md §8.14). On an idle core the yield
// returns at once.
//
// The yield is timed. One that took [crowdedYield] or more gave the
// processor away: the machine is crowded, and spinning there only burns
// time that the producer (or another consumer with work) could use, and
// it lets this consumer take samples one at a time at the producer's pace.
// So the next wait yields first, without spinning, and sleeps if the yield
// brings nothing; a yield that returns quickly (the processor is ours
// again) restores the spin, within the same wait (§8.18). A budget of zero
// or less (Spin < 0) makes neither look.
func (p *spinPlan) spinThenYield(budget time.Duration, done <-chan struct{}, ready func() bool) bool {
	return p.spinThenYieldWith(sys.YieldThread, sys.Nanotime, budget, done, ready)
}

// spinThenYieldWith is spinThenYield over an injected yield and clock, for
// tests.
func (p *spinPlan) spinThenYieldWith(yield func(), now func() int64, budget time.Duration, done <-chan struct{}, ready func() bool) bool {
	if budget <= 0 {
		return false
	}
	crowded := p.crowded.Load()
	if !crowded && sys.SpinUntil(budget, done, maxSpinPause, ready) {
		return true
	}
	t := now()
	yield()
	stillCrowded := now()-t >= int64(crowdedYield)
	if stillCrowded != crowded {
		p.crowded.Store(stillCrowded)
	}
	if ready() {
		return true
	}
	if crowded && !stillCrowded {
		// Skipped the spin, but the processor is ours after all.
		return sys.SpinUntil(budget, done, maxSpinPause, ready)
	}
	return false
}
