package main

import (
	"encoding/json"
	"fmt"
	"os"
	"regexp"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/parallax-ipc/parallax/internal/routertest"
	"github.com/parallax-ipc/parallax/publisher"
	"github.com/parallax-ipc/parallax/subscriber"
)

// TestPoolsOwned: in the owned model `parallax pools` shows one row per
// publisher data segment with the publisher's own accounting (in use,
// loans, history, outstanding, high water) next to the router's figures,
// `-json` carries the same, and `parallax top` shows the table too.
func TestPoolsOwned(t *testing.T) {
	srv := routertest.Start(t, routertest.Owned)
	sock := sockFlag(srv.SocketPath())
	ctx := t.Context()
	sub, err := subscriber.New(ctx, "cli/owned", subscriber.Options{Socket: srv.SocketPath(), QueueCapacity: 8})
	require.NoError(t, err)
	defer sub.Close()
	pub, err := publisher.New(ctx, "cli/owned", publisher.Options{Socket: srv.SocketPath(), History: 1, MaxPayload: 1024})
	require.NoError(t, err)
	defer pub.Close()
	require.NoError(t, pub.WaitForSubscribers(ctx, 1))
	for range 3 {
		require.NoError(t, pub.Send([]byte("hello")))
	}
	s, err := sub.Take(ctx)
	require.NoError(t, err)
	defer func() { _ = s.Release() }()
	loan, err := pub.Loan(10)
	require.NoError(t, err)
	defer func() { _ = pub.Release(loan) }()

	// 3 delivered, none returned (1 held, 2 queued; the history's one among
	// them), 1 loan: 4 in use, 1 loan, 1 history, 3 outstanding, high 4.
	row := regexp.MustCompile(fmt.Sprintf(`(?m)^cli/owned\s+%d\s+%d\s+0\s+1KiB\s+(\d+)\s+4\s+1\s+1\s+3\s+4\s+4KiB\s+\d+`, pub.ID(), os.Getpid()))
	var out string
	deadline := time.Now().Add(15 * time.Second)
	tick := time.NewTicker(20 * time.Millisecond)
	defer tick.Stop()
	for {
		code, o, errs := runCLI(t, "", "pools", sock)
		require.Equal(t, exitOK, code, errs)
		out = o
		if row.MatchString(out) {
			break
		}
		require.True(t, time.Now().Before(deadline), "pools never showed the publisher's report:\n%s", out)
		<-tick.C
	}
	require.Regexp(t, `(?m)^TOPIC\s+PUB\s+PID\s+SEG\s+CHUNK\s+CHUNKS\s+IN USE\s+LOANS\s+HISTORY\s+OUT\s+HIGH\s+PAGES\s+BYTES$`, out)
	require.NotContains(t, out, "POOL", "no router-wide pools table")

	code, alias, errs := runCLI(t, "", "memory", sock)
	require.Equal(t, exitOK, code, errs)
	require.Regexp(t, `(?m)^TOPIC\s+PUB\s+PID\s+SEG\s`, alias, "memory is pools")

	code, js, errs := runCLI(t, "", "pools", "-json", sock)
	require.Equal(t, exitOK, code, errs)
	var v view
	require.NoError(t, json.Unmarshal([]byte(js), &v), js)
	require.NotEmpty(t, v.PublisherSegments)
	p := v.PublisherSegments[0]
	require.Equal(t, pub.ID(), p.PubID)
	require.True(t, p.Reported)
	require.EqualValues(t, 4, p.Mem.InUse)
	require.EqualValues(t, 1, p.Mem.Loans)
	require.Equal(t, p.Count, p.Mem.Chunks)

	code, out, errs = runCLI(t, "", "top", "-n", "1", "-plain", sock)
	require.Equal(t, exitOK, code, errs)
	require.Regexp(t, row, out)
}
