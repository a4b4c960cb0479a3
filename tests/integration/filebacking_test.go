//go:build integration

package integration

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/parallax-ipc/parallax/internal/testutil"
)

// fileBackedConfig is testConfig in the owned model with publishers' data
// segments in files under dir ([memory] backing = "file").
func fileBackedConfig(dir string) string {
	return testConfig + fmt.Sprintf("\n[memory]\nmodel = \"owned\"\nbacking = \"file\"\npath = %q\n", dir)
}

// TestFileBackedSubscriberReadOnly: on a file-backed domain a stream
// crosses processes, the router's data segments are unlinked files in
// memory.path, and a subscriber of another uid (65534) cannot write the
// publisher's file it maps: its fd is O_RDONLY (pwrite → EBADF),
// reopening it O_RDWR through /proc/self/fd fails (the file is 0600, the
// router's) and so does mprotect(PROT_WRITE).
func TestFileBackedSubscriberReadOnly(t *testing.T) {
	testutil.RequiresRoot(t)
	t.Parallel()
	segDir := t.TempDir()
	r := startRouterWith(t, "socket_mode = \"0666\"\n"+fileBackedConfig(segDir))
	for d := filepath.Dir(r.Socket); d != os.TempDir() && d != "/"; d = filepath.Dir(d) {
		require.NoError(t, os.Chmod(d, 0o711))
	}
	bin := testutil.WorldExecutableCopy(t)
	sub := spawnAs(t, "subscriber as 65534", "sub", bin, nobody, sockArg(r), "-topic=filero", "-n=3", "-qcap=8", "-ro-check")
	sub.expect("ready")
	// -hold: the publisher stays until the subscriber is done (a publisher
	// gone before its subscriber fetched the data segment orphans the
	// connection, which is another test's matter).
	pub := spawn(t, "publisher", "pub", sockArg(r), "-topic=filero", "-n=3", "-size=1000", "-subs=1", "-hold")
	res := parsePubResult(t, pub.expect("result "))
	ro := sub.expect("ro ")
	require.Equal(t, []string{"EACCES", "EACCES", "EBADF"}, ro, "reopen O_RDWR, mprotect PROT_WRITE, pwrite")
	// The sample lives in an unlinked file of memory.path.
	backing := strings.Join(sub.expect("romap "), " ")
	require.True(t, strings.HasPrefix(backing, segDir+"/plx:") && strings.HasSuffix(backing, "(deleted)"),
		"the subscriber's sample lives in %q, not in an unlinked segment file of %s", backing, segDir)
	rep := parseSubReport(t, sub.wait())
	pub.wait()
	requireDelivered(t, res, rep, 1)
	ents, err := os.ReadDir(segDir)
	require.NoError(t, err)
	require.Empty(t, ents)
	t.Logf("sample in %s; subscriber of uid %d: %s", backing, nobody, strings.Join(ro, " "))
}

// TestFileBackedScenarios runs stream and fan-out across processes on
// file-backed segments.
func TestFileBackedScenarios(t *testing.T) {
	t.Parallel()
	r := startRouterWith(t, fileBackedConfig(t.TempDir()))
	t.Run("stream", func(t *testing.T) { streamScenario(t, r, "stream", 1024, 64<<10, "-max-payload=65536") })
	t.Run("fanout", func(t *testing.T) { fanOutScenario(t, r, "fanout", 3, 1000, 4096) })
}

// TestRouterRestartFileBacked: segment files are unlinked at creation, so
// a restarted router cannot find them by name; it adopts them from the fds
// the resuming clients hand back (as with memfds), checking their link
// "<path>/<name> (deleted)". The stream survives the restart intact.
func TestRouterRestartFileBacked(t *testing.T) {
	if *noDaemon {
		t.Skip("needs the parallax-roudi binary (not with -parallax.no-daemon)")
	}
	t.Parallel()
	testRouterRestart(t, fileBackedConfig(t.TempDir()), true)
}
