package main

import (
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// TestRatesBetween: top's rates are the counters' growth over the time
// between two refreshes; a topic new in the second refresh, or whose
// counters went back (it went away and came back), has none.
func TestRatesBetween(t *testing.T) {
	prev := &view{Topics: []topicStat{{Name: "a", Published: 10, Delivered: 20, Dropped: 1}, {Name: "b", Published: 5}}}
	cur := &view{Topics: []topicStat{{Name: "a", Published: 30, Delivered: 60, Dropped: 1}, {Name: "b", Published: 2}, {Name: "c", Published: 7}}}
	r := ratesBetween(prev, cur, 2*time.Second)
	require.Equal(t, map[string]topicRates{"a": {Known: true, Publish: 10, Deliver: 20, Drop: 0}}, r)
	require.Empty(t, ratesBetween(nil, cur, time.Second), "first refresh")
	require.NotNil(t, ratesBetween(nil, cur, time.Second), "rate columns are shown from the first refresh")
}
