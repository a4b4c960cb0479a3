package ringbuf

// ProducerWaiting exposes the blocked-producer flag to tests.
func ProducerWaiting(r *Ring) bool { return r.waitFlag.Load() != 0 }
