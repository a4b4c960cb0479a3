package sys

import (
	"runtime"
	"time"
	_ "unsafe" // go:linkname
)

// procyield is the runtime's spin-wait loop (PAUSE on amd64, YIELD on
// arm64), which the runtime exports for linkname use (go.dev/issue/67401).
//
//go:linkname procyield runtime.procyield
func procyield(cycles uint32)

// Pause executes the processor's spin-wait hint n times: a polling loop
// that pauses between looks leaves the cache line it polls to the writer
// (and the core to a hyperthread sibling) instead of hammering it. It
// makes no system call and does not yield the goroutine.
func Pause(n uint32) { procyield(n) }

// SpinFor spends about d on this core with spin-wait hints between clock
// reads, yielding the processor to other goroutines now and then. It is
// for pauses far shorter than a sleep's wake-up latency.
func SpinFor(d time.Duration) {
	end := nanotime() + int64(d)
	for nanotime() < end {
		procyield(32)
		runtime.Gosched()
	}
}
