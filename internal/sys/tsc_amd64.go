//go:build amd64

package sys

// rdtsc reads the processor's time-stamp counter, unordered.
//
//go:noescape
func rdtsc() uint64

// cpuid runs CPUID for leaf (subleaf 0) and returns EAX and EDX.
//
//go:noescape
func cpuid(leaf uint32) (eax, edx uint32)

// tscInvariant reports whether the processor says its time-stamp counter
// runs at a constant rate in every power state (CPUID 0x80000007, EDX bit
// 8: "invariant TSC", Linux's constant_tsc and nonstop_tsc flags).
func tscInvariant() bool {
	if maxExt, _ := cpuid(0x80000000); maxExt < 0x80000007 {
		return false
	}
	_, edx := cpuid(0x80000007)
	return edx&(1<<8) != 0
}
