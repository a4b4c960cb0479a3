package ringbuf

import "time"

// ProducerWaiting exposes the blocked-producer flag to tests.
func ProducerWaiting(r *Ring) bool { return r.waitFlag.Load() != 0 }

// BytesOf views a []uint64 as bytes (8-byte aligned) for tests.
var BytesOf = bytesOf

// Offsets of the index words, for tests that play a corrupt peer.
const (
	OffHead    = int(offHead)
	OffTail    = int(offTail)
	OffDropped = int(offDropped)
)

// StoreWord atomically stores v at mem[off:off+8], as a peer in another
// process would (tests of corrupt indices race such stores with pops).
func StoreWord(mem []byte, off int, v uint64) { word64(mem, uintptr(off)).Store(v) }

// LoadWord atomically loads the word at mem[off:off+8].
func LoadWord(mem []byte, off int) uint64 { return word64(mem, uintptr(off)).Load() }

// ConnRegions returns the offsets of a connection segment's data wake,
// return wake, data ring and return ring, for tests that pin the layout or
// scribble on one ring as a corrupt peer would.
func ConnRegions(dataCap, retCap int) (dataWake, returnWake, dataRing, returnRing int) {
	l := layoutConn(dataCap, retCap)
	return connDataWakeOff, connReturnWakeOff, l.dataRing, l.returnRing
}

// Connection header field offsets, for TestConnLayout.
var ConnHeaderOffsets = map[string]int{
	"magic": connOffMagic, "version": connOffVersion, "policy": connOffPolicy,
	"conn id": connOffConnID, "pub id": connOffPubID, "sub id": connOffSubID,
	"max held": connOffMaxHeld, "data cap": connOffDataCap, "return cap": connOffReturnCap,
	"bound": connOffBound, "reserved44": connOffReserved44,
	"data ring off": connOffDataRing, "return ring off": connOffReturnRing,
	"data wake off": connOffDataWake, "return wake off": connOffReturnWake,
	"size": connOffSize, "reserved": connOffReserved,
}

// ArmProducerWait sets the blocked-producer flag as a producer does before
// it sleeps, for tests of when pops wake it.
func ArmProducerWait(r *Ring) { r.waitFlag.Store(1) }

// ProducerWakes returns the futex word a producer sleeps on: every wake
// (and Close, and a cancelled Push) adds one.
func ProducerWakes(r *Ring) uint32 { return r.waitSeq.Load() }

// SpinPlan exposes a waiter's spin-then-yield phase to tests.
type SpinPlan struct{ p spinPlan }

// SpinThenYieldWith runs the phase over an injected yield and clock.
func (s *SpinPlan) SpinThenYieldWith(yield func(), now func() int64, budget time.Duration, done <-chan struct{}, ready func() bool) bool {
	return s.p.spinThenYieldWith(yield, now, budget, done, ready)
}

// Crowded reports whether the plan's last yield gave the processor away.
func (s *SpinPlan) Crowded() bool { return s.p.crowded.Load() }
