package core

// Blame for a corrupt ring.
//
// A ring's indices are written by its two ends: tail (and the slots, and
// the dropped count) by the producer; head by the consumer, and under
// discard-oldest also by the producer, which discards by CASing head. Any
// client with the management mapping can write any of them. A snapshot
// cannot prove who wrote a word, so blame follows word ownership and the
// one redundancy the layout has: an honest head word satisfies
// pos - pops == dropped (modulo 2^32; +1 for an instant during a discard),
// because a pop advances pos and pops together and a discard advances pos
// and then dropped. Hence:
//
//   - tail's high 32 bits set: only the producer writes tail — producer;
//   - head consistent with pops and dropped: the head word is what honest
//     pops and discards left, so the impossible distance comes from the
//     tail — producer;
//   - head inconsistent on a block-producer ring with dropped == 0: only
//     the consumer writes head there — consumer;
//   - head inconsistent on a discard-oldest ring (both write head), or
//     dropped != 0 on a block-producer ring (the producer wrote a word it
//     never writes there, and the head is wrong too): undetermined — the
//     connection is cut and neither end is disconnected.
//
// A hostile consumer that forges a consistent head (moving pos and pops
// together) gets its own publisher blamed; that is no more power than it
// has anyway (it can write garbage refs into its ring and report them,
// see [PeerReported]), and it can only hurt publishers that feed it.

// RingEnd names an end of a connection.
type RingEnd uint8

// Ends of a connection, as [Blame] names them.
const (
	// EndUnknown: the blame rules cannot tell which end wrote the word.
	EndUnknown RingEnd = iota
	// EndProducer is the publisher's end.
	EndProducer
	// EndConsumer is the subscriber's end.
	EndConsumer
)

// String returns "producer", "consumer" or "undetermined".
func (e RingEnd) String() string {
	switch e {
	case EndProducer:
		return "producer"
	case EndConsumer:
		return "consumer"
	}
	return "undetermined"
}

// Blame applies the blame rules above to the index words of a ring whose
// indices are impossible; st.Attached and st.Err are not consulted.
func Blame(st RingState) RingEnd {
	if st.Tail>>32 != 0 {
		return EndProducer
	}
	if d := st.HeadPos - st.HeadPops; d == st.Dropped || d == st.Dropped+1 {
		return EndProducer
	}
	if st.Policy == BlockProducer && st.Dropped == 0 {
		return EndConsumer
	}
	return EndUnknown
}
