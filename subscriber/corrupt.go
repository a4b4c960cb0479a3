package subscriber

// CorruptConnections returns how many of this subscriber's connections
// failed: their publisher sent refs outside its segments or never loaned,
// or a ring's indices were impossible. Each was dropped, the router told
// (which cut it), and samples from other publishers are unaffected.
func (s *Subscriber) CorruptConnections() uint64 { return s.corruptConns.Load() }
