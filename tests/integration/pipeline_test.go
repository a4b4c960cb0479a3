//go:build integration

package integration

import (
	"bytes"
	"context"
	"fmt"
	"hash/crc32"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
)

// Pipelines split across processes: each process is the real parallax CLI
// running `parallax launch "<line>"`, joined through a router by ipcsink and
// ipcsrc.

// cliBuild holds the parallax binary and the example xor plugin, built by
// TestMain (with -race, like the router).
var cliBuild struct {
	bin       string
	pluginDir string // a directory holding xor.so, kept for the whole run
}

// buildCLIAndPlugin builds cmd/parallax and the example plugin (with
// -race, like the suite) into a new directory and returns it; TestMain
// removes it after the tests.
func buildCLIAndPlugin() (string, error) {
	dir, err := os.MkdirTemp("", "parallax-integration-cli-")
	if err != nil {
		return "", err
	}
	build := func(args ...string) error {
		cmd := exec.Command("go", append([]string{"build", "-race"}, args...)...)
		out, err := cmd.CombinedOutput()
		if err != nil {
			return fmt.Errorf("go build %v: %w\n%s", args, err, out)
		}
		return nil
	}
	if err := build("-o", filepath.Join(dir, "parallax"), "github.com/parallax-ipc/parallax/cmd/parallax"); err != nil {
		os.RemoveAll(dir)
		return "", err
	}
	if err := build("-buildmode=plugin", "-o", filepath.Join(dir, "plugins", "xor.so"), "github.com/parallax-ipc/parallax/examples/plugin"); err != nil {
		os.RemoveAll(dir)
		return "", err
	}
	cliBuild.bin = filepath.Join(dir, "parallax")
	cliBuild.pluginDir = filepath.Join(dir, "plugins")
	return dir, nil
}

func buildCLI(t *testing.T) (bin, pluginDir string) {
	t.Helper()
	require.NotEmpty(t, cliBuild.bin, "TestMain did not build the CLI")
	return cliBuild.bin, cliBuild.pluginDir
}

// launched is one `parallax launch` child.
type launched struct {
	name     string
	cmd      *exec.Cmd
	out, err bytes.Buffer
	done     chan struct{}
	waitErr  error
}

// launch starts `parallax launch line` against r; if it fails, cancel is
// called so the other processes of the pipeline stop too (their errors
// then show what went wrong first).
func launch(t *testing.T, ctx context.Context, cancel context.CancelFunc, r *router, name, line string) *launched {
	t.Helper()
	bin, plugins := buildCLI(t)
	l := &launched{name: name, done: make(chan struct{})}
	l.cmd = exec.CommandContext(ctx, bin, "launch", "-socket", r.Socket, line) // killed by PID if ctx ends
	l.cmd.Env = append(os.Environ(), "PARALLAX_PLUGIN_PATH="+plugins)
	l.cmd.Stdout, l.cmd.Stderr = &l.out, &l.err
	require.NoError(t, l.cmd.Start(), name)
	go func() {
		l.waitErr = l.cmd.Wait()
		if l.waitErr != nil {
			cancel()
		}
		close(l.done)
	}()
	t.Cleanup(func() { <-l.done })
	return l
}

// wait waits for the child and requires a clean exit; it returns stdout.
func (l *launched) wait(t *testing.T) string {
	t.Helper()
	<-l.done
	require.NoError(t, l.waitErr, "%s failed:\nstdout:\n%s\nstderr:\n%s", l.name, l.out.String(), l.err.String())
	t.Logf("%s:\n%s", l.name, l.out.String())
	return l.out.String()
}

var checksumLine = regexp.MustCompile(`(?m)^\S+: checksum (crc32c:[0-9a-f]{8}) buffers=(\d+) bytes=(\d+)$`)

func checksumOf(t *testing.T, name, out string) string {
	t.Helper()
	m := checksumLine.FindStringSubmatch(out)
	require.NotNil(t, m, "%s printed no checksum:\n%s", name, out)
	return m[0][strings.Index(m[0], "crc32c:"):]
}

// fileCRC returns the CRC-32C of a file and its size.
func fileCRC(t *testing.T, path string) (string, int64) {
	t.Helper()
	f, err := os.Open(path)
	require.NoError(t, err)
	defer f.Close()
	h := crc32.New(crc32.MakeTable(crc32.Castagnoli))
	n, err := io.Copy(h, f)
	require.NoError(t, err)
	return fmt.Sprintf("crc32c:%08x", h.Sum32()), n
}

func TestPipelineAcrossTwoProcesses(t *testing.T) {
	t.Parallel()
	const n, size = 20000, 64 << 10
	r := startRouter(t)
	ctx, cancel := context.WithTimeout(context.Background(), childTimeout)
	defer cancel()
	out := filepath.Join(t.TempDir(), "v.bin")
	sink := launch(t, ctx, cancel, r, "sink", fmt.Sprintf(`ipcsrc topic=v num-buffers=%d ! checksum ! filesink location=%q`, n, out))
	src := launch(t, ctx, cancel, r, "source", fmt.Sprintf(`testsrc num-buffers=%d size=64KiB ! checksum ! ipcsink topic=v wait-subscribers=1 block-timeout=1m`, n))
	srcOut := src.wait(t)
	sinkOut := sink.wait(t)

	sent := checksumOf(t, "source", srcOut)
	require.Equal(t, fmt.Sprintf(" buffers=%d bytes=%d", n, n*size), sent[len("crc32c:12345678"):])
	require.Equal(t, sent, checksumOf(t, "sink", sinkOut))
	sum, fileSize := fileCRC(t, out)
	require.Equal(t, int64(n*size), fileSize)
	require.Equal(t, sent, sum+fmt.Sprintf(" buffers=%d bytes=%d", n, n*size))
	// Every buffer testsrc filled was a chunk of the sink's shared pool:
	// not one payload byte was copied on the way to the other process.
	require.Contains(t, srcOut, fmt.Sprintf("ipcsink0: ipcsink published=%d bytes=%d zero-copy=%d copied=0 copied-bytes=0 dropped=0", n, n*size, n))
}

func TestPipelineAcrossThreeProcesses(t *testing.T) {
	t.Parallel()
	const n, size = 5000, 64 << 10
	r := startRouter(t)
	ctx, cancel := context.WithTimeout(context.Background(), childTimeout)
	defer cancel()
	out := filepath.Join(t.TempDir(), "b.bin")
	// sink: undo the xor, check, store.
	// Small queues: the rings of a chain must not hoard every 64 KiB chunk
	// of the domain, or the transform could never allocate its output.
	sink := launch(t, ctx, cancel, r, "sink", fmt.Sprintf(`ipcsrc topic=b num-buffers=%d queue=16 ! xor key=0x5a ! checksum ! filesink location=%q`, n, out))
	// transform: xor writes its output straight into the shared pool of
	// its ipcsink (it allocates from the negotiated allocator).
	mid := launch(t, ctx, cancel, r, "transform", fmt.Sprintf(`ipcsrc topic=a num-buffers=%d queue=16 ! xor key=0x5a ! ipcsink topic=b wait-subscribers=1 block-timeout=1m`, n))
	src := launch(t, ctx, cancel, r, "source", fmt.Sprintf(`testsrc num-buffers=%d size=64KiB pattern=random ! checksum ! ipcsink topic=a wait-subscribers=1 block-timeout=1m`, n))
	for _, l := range []*launched{src, mid, sink} {
		<-l.done
		t.Logf("%s: %v\nstdout:\n%s\nstderr:\n%s", l.name, l.waitErr, l.out.String(), l.err.String())
	}
	srcOut, midOut, sinkOut := src.wait(t), mid.wait(t), sink.wait(t)

	sent := checksumOf(t, "source", srcOut)
	require.Equal(t, sent, checksumOf(t, "sink", sinkOut))
	sum, fileSize := fileCRC(t, out)
	require.Equal(t, int64(n*size), fileSize)
	require.Equal(t, sent, sum+fmt.Sprintf(" buffers=%d bytes=%d", n, n*size))
	for name, o := range map[string]string{"source": srcOut, "transform": midOut} {
		require.Contains(t, o, fmt.Sprintf("ipcsink0: ipcsink published=%d bytes=%d zero-copy=%d copied=0 copied-bytes=0", n, n*size, n), name)
	}
}
