package parallax

import "time"

// SampleMeta is the media metadata a sample may carry besides its bytes:
// the buffer metadata of a pipeline (package buffer's Meta) crossing
// processes from an ipcsink to an ipcsrc. A publisher sets it with
// publisher.Chunk.SetMeta; a subscriber reads it with
// subscriber.Sample.Meta, exactly as set.
//
// Only the owned memory model carries it (router [memory] model =
// "owned"): its chunk header has a field for each. The shared model's
// chunk header has no room for it and drops it.
type SampleMeta struct {
	PTS      time.Duration // presentation time stamp; any value, negative ones (buffer.NoTime) included
	DTS      time.Duration // decode time stamp
	Duration time.Duration // duration of the data
	Offset   uint64        // media-specific offset
	Seq      uint64        // the producer's own sequence number (the sample header's Seq stays the publisher's)
	Flags    uint32        // buffer flags; bit 31 is reserved ([MetaFlagsReserved]) and not carried
}

// MetaFlagsReserved is the bit of [SampleMeta.Flags] that is not carried:
// the chunk header uses it to mark that metadata was set at all.
const MetaFlagsReserved uint32 = 1 << 31
