package main

import (
	"io"
	"strconv"

	"github.com/parallax-ipc/parallax/internal/wire"
)

// publisherRow is one live publisher of the owned model with the message
// counters it reported (its publisher.Stats): only its process counts
// them, the router never sees an owned ring move. Reported is false until
// its first report (about a second after it started publishing).
type publisherRow struct {
	Topic       string `json:"topic"`
	PubID       uint32 `json:"pub_id"`
	PID         int32  `json:"pid"`
	Reported    bool   `json:"reported"`
	Published   uint64 `json:"published"`
	Delivered   uint64 `json:"delivered"`
	Dropped     uint64 `json:"dropped"`
	Unconnected uint64 `json:"unconnected"` // published while no subscriber was connected: nobody got them
	Removed     uint64 `json:"removed"`     // connections that ended
	AgeMs       uint64 `json:"age_ms"`      // since the router received the report
}

// publisherRows folds the per-segment rows (sorted by publisher) into one
// row per live publisher.
func publisherRows(segs []wire.PublisherSegStat) []publisherRow {
	var out []publisherRow
	for i, s := range segs {
		if s.Dead || (i > 0 && segs[i-1].PubID == s.PubID) {
			continue
		}
		m := s.Mem
		out = append(out, publisherRow{Topic: s.Topic, PubID: s.PubID, PID: s.PID, Reported: s.Reported,
			Published: m.Published, Delivered: m.Delivered, Dropped: m.Dropped, Unconnected: m.Unconnected, Removed: m.Removed, AgeMs: s.AgeMs})
	}
	return out
}

// publisherCountersTable shows each live publisher's reported counters,
// "?" until it reported.
func publisherCountersTable(w io.Writer, v *view) {
	tw := newTable(w)
	row(tw, "TOPIC", "PUB", "PID", "PUBLISHED", "DELIVERED", "DROPPED", "UNCONNECTED", "REMOVED")
	for _, p := range v.Publishers {
		cols := []any{p.Published, p.Delivered, p.Dropped, p.Unconnected, p.Removed}
		if !p.Reported {
			cols = []any{"?", "?", "?", "?", "?"}
		}
		row(tw, append([]any{p.Topic, p.PubID, strconv.Itoa(int(p.PID))}, cols...)...)
	}
	tw.Flush()
}
