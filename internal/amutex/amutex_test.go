package amutex_test

import (
	"fmt"
	"runtime"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/parallax-ipc/parallax/internal/amutex"
)

// eachMode runs f once per unlock mode this machine supports. The mode is
// a package variable, so these tests do not run in parallel with each
// other.
func eachMode(t *testing.T, f func(t *testing.T)) {
	for _, plain := range amutex.Modes() {
		t.Run(fmt.Sprintf("plain=%v", plain), func(t *testing.T) {
			old := amutex.SetPlainUnlock(plain)
			t.Cleanup(func() { amutex.SetPlainUnlock(old) })
			f(t)
		})
	}
}

// waitFor polls cond until it holds or the deadline passes.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		runtime.Gosched()
	}
}

// TestMutualExclusion has goroutines (more than the processors, so some
// sleep) increment a plain counter under the lock and check that nobody
// else is inside: a lost update or an overlap fails it, and the race
// detector checks the happens-before edges the lock must supply.
func TestMutualExclusion(t *testing.T) {
	eachMode(t, func(t *testing.T) {
		var m amutex.Mutex
		var inside atomic.Int32
		count := 0
		const workers, iters = 8, 20000
		var wg sync.WaitGroup
		for range workers {
			wg.Go(func() {
				for i := range iters {
					m.Lock()
					if inside.Add(1) != 1 {
						panic("two goroutines inside the lock")
					}
					count++
					if i%512 == 0 {
						runtime.Gosched() // a holder that is descheduled: others spin, then sleep
					}
					inside.Add(-1)
					m.Unlock()
				}
			})
		}
		wg.Wait()
		require.Equal(t, workers*iters, count)
		require.Zero(t, m.Waiters())
	})
}

// TestSleepersWake parks goroutines on a held lock until each has
// registered to sleep, then unlocks: every one of them gets the lock.
func TestSleepersWake(t *testing.T) {
	eachMode(t, func(t *testing.T) {
		var m amutex.Mutex
		m.Lock()
		const sleepers = 4
		var got atomic.Int32
		var wg sync.WaitGroup
		for range sleepers {
			wg.Go(func() {
				m.Lock()
				got.Add(1)
				m.Unlock()
			})
		}
		waitFor(t, "every goroutine registered to sleep", func() bool { return m.Waiters() == sleepers })
		require.Zero(t, got.Load(), "a goroutine got a held lock")
		require.False(t, m.TryLock(), "TryLock took a held lock")
		m.Unlock()
		wg.Wait()
		require.EqualValues(t, sleepers, got.Load())
		require.True(t, m.TryLock(), "the lock is free once every sleeper has been through it")
		m.Unlock()
	})
}

// TestNoStarvation has one goroutine lock and unlock in a tight loop while
// another asks for the lock: the asker gets it (the loop then queues
// behind it) instead of losing every race to the looping goroutine.
func TestNoStarvation(t *testing.T) {
	eachMode(t, func(t *testing.T) {
		var m amutex.Mutex
		stop := make(chan struct{})
		var loops atomic.Uint64
		done := make(chan struct{})
		go func() {
			defer close(done)
			for {
				select {
				case <-stop:
					return
				default:
				}
				m.Lock()
				loops.Add(1)
				m.Unlock()
			}
		}()
		waitFor(t, "the loop to run", func() bool { return loops.Load() > 1000 })
		for range 20 {
			got := make(chan struct{})
			go func() {
				m.Lock()
				close(got)
				m.Unlock()
			}()
			select {
			case <-got:
			case <-time.After(10 * time.Second):
				t.Fatal("a Lock starved behind a goroutine looping on the lock")
			}
		}
		close(stop)
		<-done
	})
}

// TestCond uses the Mutex as a sync.Cond's Locker: a consumer waits for
// values a producer signals.
func TestCond(t *testing.T) {
	eachMode(t, func(t *testing.T) {
		var m amutex.Mutex
		c := sync.NewCond(&m)
		var queue []int
		const n = 1000
		var wg sync.WaitGroup
		wg.Go(func() {
			for i := range n {
				m.Lock()
				queue = append(queue, i)
				m.Unlock()
				c.Signal()
			}
		})
		for want := range n {
			m.Lock()
			for len(queue) == 0 {
				c.Wait()
			}
			require.Equal(t, want, queue[0])
			queue = queue[1:]
			m.Unlock()
		}
		wg.Wait()
	})
}

// TestUnlockUnlocked: unlocking a free Mutex is a programming error and
// panics rather than corrupting the lock word.
func TestUnlockUnlocked(t *testing.T) {
	var m amutex.Mutex
	require.PanicsWithValue(t, "amutex: unlock of unlocked mutex", m.Unlock)
	m.Lock()
	require.False(t, m.TryLock())
	m.Unlock()
	require.Panics(t, m.Unlock)
}

// BenchmarkLockUnlock is one uncontended Lock/Unlock pair, next to
// sync.Mutex's (the cost the engines pay twice per message and side).
func BenchmarkLockUnlock(b *testing.B) {
	amutex.Enable()
	b.Run("amutex", func(b *testing.B) {
		var m amutex.Mutex
		for b.Loop() {
			m.Lock()
			guarded++
			m.Unlock()
		}
	})
	b.Run("sync.Mutex", func(b *testing.B) {
		var m sync.Mutex
		for b.Loop() {
			m.Lock()
			guarded++
			m.Unlock()
		}
	})
}

// BenchmarkContended locks from every processor at once (the slow path).
func BenchmarkContended(b *testing.B) {
	amutex.Enable()
	b.Run("amutex", func(b *testing.B) {
		var m amutex.Mutex
		b.RunParallel(func(pb *testing.PB) {
			for pb.Next() {
				m.Lock()
				guarded++
				m.Unlock()
			}
		})
	})
	b.Run("sync.Mutex", func(b *testing.B) {
		var m sync.Mutex
		b.RunParallel(func(pb *testing.PB) {
			for pb.Next() {
				m.Lock()
				guarded++
				m.Unlock()
			}
		})
	})
}

// guarded is what the benchmarks' critical sections change.
var guarded int

// TestNoStarvationOneProc is TestNoStarvation on one processor (a
// container limited to one CPU): the looping goroutine is preempted only
// every few milliseconds, mostly inside its critical section (its spin is
// in assembly, where it cannot be preempted), so an asker that only ever
// retries when it runs never finds the lock free; it must be handed the
// lock. Twenty asks must end within 10 s (sync.Mutex: well under 1 s).
func TestNoStarvationOneProc(t *testing.T) {
	eachMode(t, func(t *testing.T) {
		defer runtime.GOMAXPROCS(runtime.GOMAXPROCS(1))
		var m amutex.Mutex
		stop := make(chan struct{})
		var sink atomic.Uint64
		var wg sync.WaitGroup
		wg.Go(func() {
			for {
				select {
				case <-stop:
					return
				default:
				}
				m.Lock()
				for i := range 20 {
					sink.Add(uint64(i))
				}
				m.Unlock()
			}
		})
		defer func() { close(stop); wg.Wait() }()
		asked := make(chan struct{})
		go func() {
			defer close(asked)
			for range 20 {
				m.Lock()
				sink.Add(1) // the asker's own critical section
				m.Unlock()
				runtime.Gosched()
			}
		}()
		select {
		case <-asked:
		case <-time.After(10 * time.Second):
			t.Fatal("20 Locks did not get through in 10 s behind a goroutine looping on the lock")
		}
	})
}
