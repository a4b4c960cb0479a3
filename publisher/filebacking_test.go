package publisher_test

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/parallax-ipc/parallax"
	"github.com/parallax-ipc/parallax/internal/routertest"
	"github.com/parallax-ipc/parallax/publisher"
	"github.com/parallax-ipc/parallax/subscriber"
)

// fileBacked is a router configuration whose publishers' data segments are
// files in dir.
func fileBacked(dir string) string {
	return fmt.Sprintf("[memory]\nbacking = \"file\"\npath = %q\n[publishers]\nhugepages = \"never\"\n", dir)
}

// With [memory] backing = "file" a publisher's data segments are files the
// router creates in memory.path and unlinks at once: a stream runs over
// them, the router (in this process) holds fds whose links name the
// directory, and the directory stays empty.
func TestFileBackedStream(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	srv := routertest.Start(t, fileBacked(dir))
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	sock := srv.SocketPath()
	pub, err := publisher.New(ctx, "file/stream", publisher.Options{Socket: sock, MaxPayload: 1024})
	require.NoError(t, err)
	defer pub.Close()
	sub, err := subscriber.New(ctx, "file/stream", subscriber.Options{Socket: sock, QueueCapacity: 16, Policy: parallax.BlockProducer})
	require.NoError(t, err)
	defer sub.Close()
	require.NoError(t, pub.WaitForSubscribers(ctx, 1))

	links := fdLinksUnder(t, dir)
	require.NotEmpty(t, links, "no fd of this process (router, publisher) is a file in %s", dir)
	for _, l := range links {
		require.True(t, strings.HasSuffix(l, " (deleted)"), "segment file %s is not unlinked", l)
		require.Contains(t, l, "/plx:", "segment file %s is not named by the router", l)
	}
	ents, err := os.ReadDir(dir)
	require.NoError(t, err)
	require.Empty(t, ents, "segment files are unlinked right after creation")

	const n = 200
	done := make(chan error, 1)
	go func() {
		for i := range n {
			if err := pub.Send(fmt.Appendf(nil, "sample %d %s", i, strings.Repeat("x", i))); err != nil {
				done <- err
				return
			}
		}
		done <- nil
	}()
	for i := range n {
		s, err := sub.TakeTimeout(10 * time.Second)
		require.NoError(t, err)
		require.Equal(t, fmt.Sprintf("sample %d %s", i, strings.Repeat("x", i)), string(s.Bytes()))
		require.NoError(t, s.Release())
	}
	require.NoError(t, <-done)
}

// fdLinksUnder returns the /proc/self/fd links of this process that name a
// file in dir.
func fdLinksUnder(t *testing.T, dir string) []string {
	t.Helper()
	ents, err := os.ReadDir("/proc/self/fd")
	require.NoError(t, err)
	var out []string
	for _, e := range ents {
		l, err := os.Readlink(filepath.Join("/proc/self/fd", e.Name()))
		if err == nil && strings.HasPrefix(l, dir+"/") {
			out = append(out, l)
		}
	}
	return out
}
