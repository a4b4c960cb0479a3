package publisher

// CorruptConnections returns how many of this publisher's connections
// failed: a subscriber returned refs it was never given, or a ring's
// indices were impossible. Each was dropped (the publish that found it
// returned an error for that subscriber) and the router told, which cut
// it (owned.go badConn).
func (p *Publisher) CorruptConnections() uint64 { return p.corruptConns.Load() }
