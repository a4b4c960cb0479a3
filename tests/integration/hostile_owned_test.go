//go:build integration

package integration

import (
	"fmt"
	"strconv"
	"testing"

	"github.com/stretchr/testify/require"
)

// TestOwnedHostileCut: in the owned model a hostile publisher that pushes a
// garbage ref into its data rings, and a hostile subscriber that pushes a
// forged return into its return ring, each get that connection cut by the
// router on the honest end's report (ConnectionRemoved{Corrupt} to the
// survivor, which reclaims or stops taking), while every other connection
// (the honest publisher's, the idle client's) loses and corrupts nothing and
// the honest publishers' accounting stays exact.
func TestOwnedHostileCut(t *testing.T) {
	t.Parallel()
	r := startRouterWith(t, ownedConfig)
	sock := sockArg(r)
	idle := spawn(t, "idle client", "kwsub", sock, "-topic=hp", "-policy=discard", "-qcap=4", "-idle-topic=idle", "-tolerate-bad")
	idle.expect("ready")

	t.Run("publisher garbage", func(t *testing.T) {
		s := spawn(t, "subscriber", "kwsub", sock, "-topic=hp", "-qcap=64", "-tolerate-bad")
		s.expect("ready")
		h := spawn(t, "honest publisher", "kwpub", sock, "-topic=hp")
		hID := atoi(t, h.expect("ready ")[0])
		x := spawn(t, "hostile publisher", "kwpub", sock, "-topic=hp")
		x.expect("ready ")
		h.cmdLine("subs 2", "subs")
		x.cmdLine("subs 2", "subs")
		h.cmdLine("pub 3", "ok ")
		x.cmdLine("pub 2", "ok ")
		s.cmdLine("take 5", "took ")
		s.cmdLine("release", "released")
		require.Equal(t, []string{"2"}, x.cmdLine("garbage", "garbage "), "into S's and the idle client's data rings")
		h.cmdLine("pub 4", "ok ")
		s.send("take 4")
		s.expect("badconn ")
		s.expect("took ")
		// The router cut X–S on S's report: X is told (its subscriber
		// count drops) and takes back what it delivered there.
		eventually(t, "the hostile publisher's connection to S is cut", func() (bool, string) {
			m := x.kwStats(t)
			return m.Subscribers == 1, fmt.Sprintf("%+v", m)
		})
		h.cmdLine("pub 2", "ok ")
		s.cmdLine("take 2", "took ")
		require.Equal(t, []string{"9", "9"}, s.cmdLine("seen "+strconv.FormatUint(hID, 10), "seen "), "the honest stream is whole")
		s.cmdLine("pubs 1", "pubs")
		require.Equal(t, uint64(2), h.kwStats(t).Subscribers, "the honest publisher's connections are untouched")
		// The idle client meets the garbage too when it finally takes:
		// its report cuts its connection to X as well.
		idle.send("drain")
		idle.expect("badconn ")
		idle.expect("drained ")
		eventually(t, "the hostile publisher's connection to the idle client is cut", func() (bool, string) {
			m := x.kwStats(t)
			return m.Subscribers == 0 && m.Outstanding == 0, fmt.Sprintf("%+v", m)
		})
		s.cmdLine("release", "released")
		idle.cmdLine("drain", "drained ")
		requireExact(t, h, []*proc{s, idle})
	})

	t.Run("subscriber forged return", func(t *testing.T) {
		p := spawn(t, "publisher", "kwpub", sock, "-topic=hs", "-tolerate-bad")
		pID := atoi(t, p.expect("ready ")[0])
		s1 := spawn(t, "honest subscriber", "kwsub", sock, "-topic=hs", "-qcap=64")
		s1.expect("ready")
		z := spawn(t, "hostile subscriber", "kwsub", sock, "-topic=hs", "-qcap=64")
		z.expect("ready")
		p.cmdLine("subs 2", "subs")
		p.cmdLine("pub 4", "ok ")
		for _, x := range []*proc{s1, z} {
			x.cmdLine("take 4", "took ")
			x.cmdLine("release", "released")
		}
		require.Equal(t, []string{"1"}, z.cmdLine("forge", "forged "))
		before := p.kwStats(t) // drains: finds the forged return, fails Z's connection
		require.Equal(t, uint64(0), before.Outstanding, "the honest returns were all accepted: %+v", before)
		p.send("pub 1")
		p.expect("badconn ") // Publish returns the failure; the publisher reports it
		p.expect("ok ")
		eventually(t, "the router cuts the forging subscriber's connection", func() (bool, string) {
			m := p.kwStats(t)
			return m.Subscribers == 1, fmt.Sprintf("%+v", m)
		})
		z.cmdLine("pubs 0", "pubs") // told: its connection is gone
		p.cmdLine("pub 2", "ok ")
		s1.cmdLine("take 3", "took ")
		require.Equal(t, []string{"7", "7"}, s1.cmdLine("seen "+strconv.FormatUint(pID, 10), "seen "), "the honest subscriber lost nothing")
		idle.cmdLine("drain", "drained ")
		m := p.kwStats(t)
		require.Equal(t, uint64(0), m.Loans, "%+v", m)
		requireExact(t, p, []*proc{s1})
	})
	idle.cmdLine("pubs 0", "pubs")
}
