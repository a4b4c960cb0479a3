// Package amutex provides [Mutex], a mutual-exclusion lock for data that
// one goroutine uses at a high rate and others rarely: a publisher's or a
// subscriber's engine, which the application's goroutine locks twice per
// message and the client runtime's goroutine now and then.
//
// sync.Mutex pays two locked read-modify-write instructions per
// Lock/Unlock pair (a CAS and an XADD, ~6.5 ns each on the machines this
// was measured on). A Mutex pays one: Lock is a CAS, and Unlock a plain
// store (a release on amd64) followed by a plain load of the waiter count.
// That load may pass the store (x86's store buffer), which would let an
// Unlock miss a waiter that registered just then and leave it asleep with
// the lock free. The waiter closes that window instead: after it registers
// it calls membarrier(2) (MEMBARRIER_CMD_PRIVATE_EXPEDITED), which makes
// every running thread of the process execute a full barrier, and only then
// tries the lock once more before it sleeps. This is the asymmetric form of
// the Dekker handshake: of the unlocker's "store state, load waiters" and
// the waiter's "store waiters, membarrier, load state", at least one load
// sees the other's store, so either the waiter takes the lock or the
// unlocker wakes it.
//
// The slow path costs a system call and an inter-processor interrupt (~2
// us) when a goroutine has to sleep, after a short spin. Where membarrier
// is not available (kernels before 4.14, seccomp filters, other systems)
// or in race-detector builds, Unlock stores with a sequentially consistent
// atomic instead, which needs no membarrier; the algorithm is otherwise
// the same.
//
// While any goroutine waits asleep, Lock's fast path is closed and every
// Lock queues behind the sleepers (sync.Cond wakes them in order). That
// alone does not keep a goroutine that locks in a tight loop from starving
// the others: a woken sleeper only tries the lock when it runs, and on a
// busy or single processor the looping goroutine is mostly preempted while
// it holds the lock (its spin is in assembly, where it cannot be). So, as
// sync.Mutex does, a sleeper that has waited longer than starveAfter sets
// the mutex starving, and an Unlock that finds sleepers then hands the
// lock, still held, to one of them instead of freeing it.
package amutex

import (
	"runtime"
	"sync"
	"sync/atomic"
	"time"

	"github.com/parallax-ipc/parallax/internal/sys"
)

// plainUnlock says whether Unlock stores with a plain (release) store and
// sleepers use membarrier. It is off until [Enable] registered the
// process for membarrier, and it is only ever switched on: a sleeper that
// saw it off and skipped membarrier registered as a waiter before it
// looked (seq-cst), so an Unlock that sees it on, later in that order,
// also sees the waiter in its load that follows.
var plainUnlock atomic.Bool

var enableOnce sync.Once

// Enable switches every Mutex of the process to the plain-store Unlock, if
// this build and kernel allow it (amd64 without the race detector,
// membarrier(2) with MEMBARRIER_CMD_PRIVATE_EXPEDITED). It registers the
// process for membarrier once; that may wait for an RCU grace period (up
// to a few ms), so it is done when the first engine is made, not at
// start-up. Safe to call from any goroutine, any number of times.
func Enable() {
	enableOnce.Do(func() {
		if sys.ReleaseIsPlain && sys.MembarrierReady() {
			plainUnlock.Store(true)
		}
	})
}

// spinTries bounds the slow path's spin before it sleeps; each try first
// pauses spinPause spin-wait hints (~80 ns here: a PAUSE is ~19 ns on this
// VM's cores), so the spin lasts ~2.5 us, a few engine critical sections,
// about as long as sync.Mutex spins.
const (
	spinTries = 32
	spinPause = 4
)

// starveAfter is how long a sleeper waits before it asks for hand-off
// (sync.Mutex's starvation threshold).
const starveAfter = time.Millisecond

// A Mutex is a mutual-exclusion lock; see the package doc. The zero value
// is unlocked. A Mutex must not be copied after first use. It implements
// sync.Locker, so a sync.Cond can use it.
type Mutex struct {
	state   atomic.Uint32 // 1: held
	waiters atomic.Int32  // goroutines registered to sleep (sleeping or about to)
	smu     sync.Mutex    // guards the sleeping: registration, cond
	cond    sync.Cond     // sleepers; L is set to &smu on first use

	// Guarded by smu.
	starving bool // a sleeper waited longer than starveAfter: Unlock hands off
	handoff  bool // an Unlock passed the lock, still held, to the sleepers
}

// Lock locks m, waiting until it is free.
func (m *Mutex) Lock() {
	if m.waiters.Load() == 0 && m.state.CompareAndSwap(0, 1) {
		return
	}
	m.lockSlow()
}

// TryLock locks m if it is free and nobody sleeps waiting for it, and
// reports whether it did.
func (m *Mutex) TryLock() bool {
	return m.waiters.Load() == 0 && m.state.CompareAndSwap(0, 1)
}

// Unlock unlocks m. Unlocking a Mutex that is not locked panics. A Mutex
// is not tied to a goroutine: another goroutine may unlock it.
func (m *Mutex) Unlock() {
	if m.state.Load() == 0 {
		panic("amutex: unlock of unlocked mutex")
	}
	if m.waiters.Load() != 0 {
		m.unlockSlow()
		return
	}
	if plainUnlock.Load() {
		sys.StoreRelease32(&m.state, 0)
	} else {
		m.state.Store(0)
	}
	// May pass the store above in plainUnlock mode: a sleeper's
	// membarrier covers that (package doc).
	if m.waiters.Load() != 0 {
		m.wake()
	}
}

// lockSlow spins a little, then registers as a sleeper and waits.
func (m *Mutex) lockSlow() {
	for range spinTries {
		sys.Pause(spinPause)
		if m.waiters.Load() == 0 && m.state.Load() == 0 && m.state.CompareAndSwap(0, 1) {
			return
		}
	}
	m.smu.Lock()
	if m.cond.L == nil {
		m.cond.L = &m.smu
	}
	m.waiters.Add(1) // seq-cst: closes the fast path
	poll := false
	if plainUnlock.Load() {
		// Every unlock store made before this point is visible to
		// the CAS below; every later unlock sees waiters > 0 and
		// wakes (it takes smu, so its Signal cannot fall between our
		// CAS and our Wait). If membarrier fails (it cannot once the
		// process is registered, short of a seccomp filter installed
		// since), an unlock may miss us: poll instead of sleeping.
		poll = sys.Membarrier() != nil
	}
	var start time.Time // zero until our first Wait
	for {
		// A hand-off is for the goroutines that were asleep when it was
		// made (every one of them has waited), not for us on our first
		// try: a goroutine locking in a loop would take it back each time.
		if m.handoff && !start.IsZero() {
			m.handoff = false // the lock is ours, still held
			break
		}
		if m.state.CompareAndSwap(0, 1) {
			break
		}
		if start.IsZero() {
			start = time.Now()
		} else if !m.starving && time.Since(start) > starveAfter {
			m.starving = true
		}
		if poll {
			m.smu.Unlock()
			runtime.Gosched()
			m.smu.Lock()
			continue
		}
		m.cond.Wait()
	}
	// Leave starvation mode with the last sleeper, or when the lock came
	// quickly (as sync.Mutex does); a sleeper still starving sets it again
	// at its next failed try.
	if m.waiters.Add(-1) == 0 || start.IsZero() || time.Since(start) <= starveAfter {
		m.starving = false
	}
	m.smu.Unlock()
}

// unlockSlow is Unlock when goroutines sleep (or are about to). Under smu
// every registered goroutine has made its first try and waits or was
// woken, and it looks at handoff, under smu, before each later try.
// Starving, it leaves the lock held and hands it to them; otherwise it
// frees the lock and wakes one.
func (m *Mutex) unlockSlow() {
	m.smu.Lock()
	if m.starving && m.waiters.Load() != 0 {
		m.handoff = true
	} else {
		m.state.Store(0)
	}
	m.cond.Signal() // L is set: a goroutine registered
	m.smu.Unlock()
}

// wake wakes the longest sleeping waiter, if any.
func (m *Mutex) wake() {
	m.smu.Lock()
	m.cond.Signal()
	m.smu.Unlock()
}
