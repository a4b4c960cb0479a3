package owner

// HistoryPush keeps loaned chunk idx for late joiners: it adds a unit to the
// chunk and, when Config.History chunks are kept already, drops the oldest
// one's unit (freeing it if nothing else holds it). The publisher calls it
// while publishing, before [Tracker.Published]. With Config.History 0 it
// does nothing. Errors: [ErrNotLoaned]; [ErrDelivered] if idx is in history
// already. HistoryPush allocates nothing.
func (t *Tracker) HistoryPush(idx uint32) error {
	if len(t.hist) == 0 {
		return nil
	}
	if int(idx) >= len(t.chunks) || t.chunks[idx].state != stateLoaned {
		return ErrNotLoaned
	}
	ch := &t.chunks[idx]
	if ch.hist {
		return ErrDelivered
	}
	if t.histLen == len(t.hist) {
		old := t.hist[t.histHead]
		t.histHead = (t.histHead + 1) % len(t.hist)
		t.histLen--
		t.chunks[old].hist = false
		t.drop(old)
	}
	t.hist[(t.histHead+t.histLen)%len(t.hist)] = idx
	t.histLen++
	ch.hist = true
	ch.fanout++
	t.units++
	return nil
}

// History appends the chunk indices in history to dst, oldest first, and
// returns it. A new connection gets up to min(History, len, Bound) of the
// newest of them, each with [Tracker.Deliver] and a ring push, oldest first;
// [Tracker.Ref] gives their refs.
func (t *Tracker) History(dst []uint32) []uint32 {
	for i := range t.histLen {
		dst = append(dst, t.hist[(t.histHead+i)%len(t.hist)])
	}
	return dst
}
