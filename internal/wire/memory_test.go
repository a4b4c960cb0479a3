package wire

import (
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
)

// memorySamples holds one populated instance of every publisher memory
// message; samples() appends them (golden files, round trips, fuzz seeds).
func memorySamples() []struct {
	name  string
	reqID uint32
	msg   Message
} {
	mem := PubMemory{PubID: 9, Segments: 2, Chunks: 96, Free: 80, InUse: 16, Loans: 1, History: 4, Outstanding: 12, HighWater: 40, Reclaimed: 7, BadReturns: 1,
		Published: 1000, Delivered: 1900, Dropped: 3, Unconnected: 17, Removed: 2}
	return []struct {
		name  string
		reqID uint32
		msg   Message
	}{
		{"report_memory", 33, &ReportMemory{Publishers: []PubMemory{mem, {PubID: 10, Segments: 1, Chunks: 8, Free: 8}},
			Conns: []ConnTraffic{{ConnID: 4, Delivered: 1000, Dropped: 3, Returned: 988}, {ConnID: 5, Delivered: 900}}}},
		{"list_publisher_segments", 34, &ListPublisherSegments{Offset: 64}},
		{"publisher_segment_list", 34, &PublisherSegmentList{Segments: []PublisherSegStat{
			{PubID: 9, Topic: "camera/front.raw", ClientID: 3, PID: 4244, Index: 0, ChunkSize: 4096, Count: 64, Bytes: 290816, PageSize: 4096, Reported: true, AgeMs: 120, Mem: mem},
			{PubID: 9, Topic: "camera/front.raw", ClientID: 3, PID: 4244, Index: 1, ChunkSize: 4096, Count: 32, Bytes: 2 << 20, PageSize: 2 << 20, Hugepages: true, Reported: true, AgeMs: 120, Mem: mem},
			{PubID: 11, Topic: "imu", Dead: true, Index: 0, ChunkSize: 64, Count: 16, Bytes: 8192, PageSize: 4096},
		}, Next: 0}},
	}
}

func TestMemoryTypes(t *testing.T) {
	t.Parallel()
	rep, ok := ReplyType(TypeReportMemory)
	require.True(t, ok)
	require.Equal(t, TypeAck, rep)
	require.GreaterOrEqual(t, TypeReportMemory, TypeReportFirst)
	require.LessOrEqual(t, TypeReportMemory, TypeReportLast)
	rep, ok = ReplyType(TypeListPublisherSegments)
	require.True(t, ok)
	require.Equal(t, TypePublisherSegmentList, rep)
	require.GreaterOrEqual(t, TypeListPublisherSegments, TypeIntrospectFirst)
	require.LessOrEqual(t, TypePublisherSegmentList, TypeIntrospectLast)
	_, ok = ReplyType(TypePublisherSegmentList)
	require.False(t, ok, "PublisherSegmentList is a reply")
	for _, typ := range []Type{TypeReportMemory, TypeListPublisherSegments, TypePublisherSegmentList} {
		require.False(t, typ.IsPush())
		require.True(t, typ.Known())
		require.Equal(t, typ, New(typ).MessageType())
	}
}

func TestMemoryRejects(t *testing.T) {
	t.Parallel()
	ok := PubMemory{PubID: 1, Chunks: 10, Free: 6, InUse: 4, Loans: 1, History: 2}
	with := func(f func(*PubMemory)) []PubMemory { p := ok; f(&p); return []PubMemory{p} }
	many := make([]PubMemory, MaxMemoryReports+1)
	for i := range many {
		many[i] = PubMemory{PubID: uint32(i + 1)}
	}
	seg := PublisherSegStat{PubID: 1, Topic: "t", ChunkSize: 64, Count: 1, PageSize: 4096}
	for _, c := range []struct {
		name string
		msg  Message
		want string
	}{
		{"too many", &ReportMemory{Publishers: many}, "ReportMemory.Publishers"},
		{"pub 0", &ReportMemory{Publishers: with(func(p *PubMemory) { p.PubID = 0 })}, "Publishers[0].PubID"},
		{"repeated", &ReportMemory{Publishers: []PubMemory{ok, ok}}, "Publishers[1].PubID"},
		{"free beyond chunks", &ReportMemory{Publishers: with(func(p *PubMemory) { p.Free = 11 })}, "Publishers[0].Free"},
		{"in use beyond chunks", &ReportMemory{Publishers: with(func(p *PubMemory) { p.InUse, p.Free = 11, 0 })}, "Publishers[0].InUse"},
		{"free+in use", &ReportMemory{Publishers: with(func(p *PubMemory) { p.Free = 5 })}, "is not Chunks"},
		{"loans beyond in use", &ReportMemory{Publishers: with(func(p *PubMemory) { p.Loans = 5 })}, "exceeds InUse"},
		{"history beyond in use", &ReportMemory{Publishers: with(func(p *PubMemory) { p.History = 5 })}, "exceeds InUse"},
		{"bad topic", &PublisherSegmentList{Segments: []PublisherSegStat{func() PublisherSegStat { s := seg; s.Topic = ""; return s }()}}, "Segments[0].Topic"},
		{"no chunks", &PublisherSegmentList{Segments: []PublisherSegStat{func() PublisherSegStat { s := seg; s.Count = 0; return s }()}}, "Segments[0]"},
		{"bad page", &PublisherSegmentList{Segments: []PublisherSegStat{func() PublisherSegStat { s := seg; s.PageSize = 3000; return s }()}}, "Segments[0].PageSize"},
		{"bad report", &PublisherSegmentList{Segments: []PublisherSegStat{func() PublisherSegStat { s := seg; s.Reported = true; return s }()}}, "Segments[0].Mem.PubID"},
		{"long page", &PublisherSegmentList{Segments: make([]PublisherSegStat, MaxIntrospectPage+1)}, "PublisherSegmentList.Segments"},
		{"too many conns", &ReportMemory{Conns: make([]ConnTraffic, MaxConnReports+1)}, "ReportMemory.Conns"},
		{"conn 0", &ReportMemory{Conns: []ConnTraffic{{}}}, "Conns[0].ConnID"},
		{"returned beyond delivered", &ReportMemory{Conns: []ConnTraffic{{ConnID: 1, Delivered: 2, Returned: 3}}}, "exceeds Delivered"},
		{"repeated conn", &ReportMemory{Conns: []ConnTraffic{{ConnID: 1}, {ConnID: 1}}}, "Conns[1].ConnID"},
	} {
		err := c.msg.Validate()
		require.ErrorIs(t, err, ErrInvalidArgument, c.name)
		require.Contains(t, err.Error(), c.want, c.name)
	}
	require.NoError(t, (&ReportMemory{Publishers: []PubMemory{ok}}).Validate())
	dead := seg
	dead.Topic, dead.Dead = "", true
	require.NoError(t, (&PublisherSegmentList{Segments: []PublisherSegStat{dead}}).Validate(), "a tombstone may have lost its topic")
}

// TestLargestMemoryFit: full pages at their field limits fit one datagram.
func TestLargestMemoryFit(t *testing.T) {
	t.Parallel()
	const u64, u32 = 1<<64 - 1, 1<<32 - 1
	mem := PubMemory{PubID: u32, Segments: u32, Chunks: u32, Free: 0, InUse: u32, Loans: u32, History: u32, Outstanding: u32, HighWater: u32, Reclaimed: u64, BadReturns: u64,
		Published: u64, Delivered: u64, Dropped: u64, Unconnected: u64, Removed: u64}
	rep := &ReportMemory{}
	for i := range MaxMemoryReports {
		m := mem
		m.PubID = uint32(i + 1)
		rep.Publishers = append(rep.Publishers, m)
	}
	for i := range MaxConnReports {
		rep.Conns = append(rep.Conns, ConnTraffic{ConnID: u32 - uint32(i), Delivered: u64, Dropped: u64, Returned: u64})
	}
	list := &PublisherSegmentList{Next: u32}
	for range MaxIntrospectPage {
		list.Segments = append(list.Segments, PublisherSegStat{PubID: u32, Topic: strings.Repeat("t", MaxNameLen), ClientID: 0xffff, PID: 1<<31 - 1, Dead: true,
			Index: 0xffff, ChunkSize: u32, Count: u32, Bytes: u64, PageSize: MaxPageSize, Hugepages: true, Reported: true, AgeMs: u64, Mem: mem})
	}
	for _, m := range []Message{rep, list} {
		require.NoError(t, m.Validate())
		b, err := Encode(u32, m)
		require.NoError(t, err, "%s", m.MessageType())
		require.LessOrEqual(t, len(b), MaxMessageSize, "%s", m.MessageType())
		t.Logf("largest %s: %d bytes", m.MessageType(), len(b))
	}
}
