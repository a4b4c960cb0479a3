package ownedpub_test

import (
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/parallax-ipc/parallax/dataseg"
	"github.com/parallax-ipc/parallax/internal/ownedpub"
	"github.com/parallax-ipc/parallax/ringbuf"
)

// SetMeta's media fields reach the subscriber with Length, Seq and Stamp
// from the publish; a chunk reused without SetMeta carries zero media
// fields (not the previous sample's), a released loan's SetMeta leaves
// nothing behind, and SetMeta on a stale copy of a published loan writes
// nothing into the chunk, which may be another sample by then.
func TestSetMetaHeader(t *testing.T) {
	t.Parallel()
	r := newRig(t, ownedpub.Options{}, 64, 1) // one chunk: every loan reuses it
	_, sub := r.conn(t, 1, ringbuf.DiscardOldest, 4, 4, 0)

	l, err := r.e.Loan(40)
	require.NoError(t, err)
	l.SetMeta(dataseg.Meta{Length: 10, Flags: dataseg.FlagMetaSet | 3, PTS: 7, DTS: 8, Duration: 9, Offset: 11, UserSeq: 12})
	l.SetStamp(1234)
	stale := l
	require.NoError(t, r.e.Publish(&l))
	ref, buf, m, ok := sub.pop()
	require.True(t, ok)
	require.Len(t, buf, 10)
	require.Equal(t, dataseg.Meta{Length: 10, Flags: dataseg.FlagMetaSet | 3, Seq: 1, Stamp: 1234, PTS: 7, DTS: 8, Duration: 9, Offset: 11, UserSeq: 12}, m)

	stale.SetMeta(dataseg.Meta{PTS: 99}) // published already: ignored
	_, m, err = r.ro.View(ref.Slot())
	require.NoError(t, err)
	require.EqualValues(t, 7, m.PTS, "a stale loan's SetMeta changed a published sample")
	sub.give(ref)

	l, err = r.e.Loan(40)
	require.NoError(t, err, "the returned chunk is loaned again")
	l.SetMeta(dataseg.Meta{PTS: 5, UserSeq: 6})
	require.NoError(t, r.e.Release(&l))
	l, err = r.e.Loan(16)
	require.NoError(t, err)
	require.NoError(t, r.e.Publish(&l))
	_, buf, m, ok = sub.pop()
	require.True(t, ok)
	require.Len(t, buf, 16)
	require.Equal(t, dataseg.Meta{Length: 16, Seq: 2}, m, "media fields of an earlier use of the chunk leaked into this sample")
}
