package ringbuf

// ProducerWaiting exposes the blocked-producer flag to tests.
func ProducerWaiting(r *Ring) bool { return r.waitFlag.Load() != 0 }

// BytesOf views a []uint64 as bytes (8-byte aligned) for tests.
var BytesOf = bytesOf
