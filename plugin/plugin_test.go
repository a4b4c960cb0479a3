package plugin_test

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"sync"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/parallax-ipc/parallax/buffer"
	"github.com/parallax-ipc/parallax/internal/testutil"
	"github.com/parallax-ipc/parallax/pipeline"
	"github.com/parallax-ipc/parallax/pipeline/elements"
	"github.com/parallax-ipc/parallax/plugin"
)

// builtDir holds the plugins the tests built, removed after the tests.
var builtDir string

func TestMain(m *testing.M) {
	testutil.MainWithCleanup(m, func() {
		if builtDir != "" {
			_ = os.RemoveAll(builtDir)
		}
	})
}

// testPlugins are the plugins TestPlugins loads, built once per process:
// a Go plugin package can be opened once per process (a second build of it
// at another path fails with "plugin already loaded"), so runs of the test
// after the first (-count) load the same files again.
var testPlugins = sync.OnceValues(func() (builtPlugins, error) {
	dir, err := os.MkdirTemp("", "parallax-plugin-test-")
	if err != nil {
		return builtPlugins{}, err
	}
	builtDir = dir
	p := builtPlugins{good: filepath.Join(dir, "good"), bad: filepath.Join(dir, "bad"), dup: filepath.Join(dir, "dup")}
	if p.xorSO, err = buildPlugin(p.good, "xor", "./examples/plugin"); err != nil {
		return p, err
	}
	if p.badSO, err = buildPlugin(p.bad, "badabi", "./plugin/testdata/badabi"); err != nil {
		return p, err
	}
	_, err = buildPlugin(p.dup, "dup", "./plugin/testdata/dup")
	return p, err
})

// builtPlugins names the directories and files testPlugins built.
type builtPlugins struct {
	good, bad, dup string // one plugin each
	xorSO, badSO   string
}

// buildPlugin builds the package at pkg (relative to the module root) as a
// plugin into dir, with -race when this test binary has it (a plugin must
// be built like its host).
func buildPlugin(dir, name, pkg string) (string, error) {
	out := filepath.Join(dir, name+".so")
	args := []string{"build", "-buildmode=plugin", "-o", out}
	if raceEnabled {
		args = append(args, "-race")
	}
	cmd := exec.Command("go", append(args, pkg)...)
	cmd.Dir = ".." // the module root
	if b, err := cmd.CombinedOutput(); err != nil {
		return "", fmt.Errorf("go build %s: %w: %s", pkg, err, b)
	}
	return out, nil
}

// TestPlugins builds the example plugin and two faulty ones (once per
// process) and checks loading, running, ABI and duplicate errors. Each
// subtest uses a registry of its own, so runs after the first see the
// same results although the plugins stay open.
func TestPlugins(t *testing.T) {
	if testing.Short() {
		t.Skip("builds plugins with the Go toolchain")
	}
	built, err := testPlugins()
	require.NoError(t, err)
	good, dupDir, xorSO, badSO := built.good, built.dup, built.xorSO, built.badSO

	t.Run("LoadAndRun", func(t *testing.T) {
		var r pipeline.Registry
		elements.Register(&r)
		t.Setenv(plugin.EnvPath, ":"+good) // empty entries are skipped
		infos, err := plugin.LoadEnv(&r)
		require.NoError(t, err)
		require.Len(t, infos, 1)
		require.Equal(t, plugin.Info{Path: xorSO, Name: "xor", Version: "1.0.0", Description: "example plugin: XOR transform", Elements: []string{"xor"}}, infos[0])
		require.Equal(t, infos, plugin.Loaded(&r))
		f, ok := r.Lookup("xor")
		require.True(t, ok)
		require.Equal(t, "plugin xor", f.Origin)

		// Loading the same file again is a no-op.
		again, err := plugin.Load(xorSO, &r)
		require.NoError(t, err)
		require.Equal(t, infos[0], again)

		// XOR twice restores the stream: the checksums match.
		g, err := pipeline.Launch("testsrc num-buffers=50 size=1000 pattern=random ! checksum name=a ! xor key=0x5a ! xor ! xor key=0xa5 ! checksum name=b ! fakesink", &r)
		require.NoError(t, err)
		require.NoError(t, pipeline.Run(context.Background(), g, pipeline.Options{}))
		a := g.Element("a").(*elements.Checksum).Result()
		b := g.Element("b").(*elements.Checksum).Result()
		require.Equal(t, uint64(50), a.Buffers)
		require.Equal(t, a, b)

		// The element transforms bytes as documented.
		e, err := r.Make("xor", map[string]string{"key": "1"})
		require.NoError(t, err)
		e.(pipeline.AllocatorUser).UseAllocator(buffer.Heap{})
		out, err := e.(pipeline.Transform).Process(context.Background(), buffer.New([]byte{0, 1, 2}))
		require.NoError(t, err)
		require.Equal(t, []byte{1, 0, 3}, out.Bytes())
		out.Release()
	})

	t.Run("ABIMismatch", func(t *testing.T) {
		var r pipeline.Registry
		_, err := plugin.Load(badSO, &r)
		require.ErrorIs(t, err, plugin.ErrABI)
		require.Contains(t, err.Error(), "plugin has ABI version 99, this host supports version 1")
		require.Contains(t, err.Error(), badSO)
		_, ok := r.Lookup("badabi")
		require.False(t, ok, "nothing registered")
	})

	t.Run("DuplicateElement", func(t *testing.T) {
		var r pipeline.Registry
		_, err := plugin.LoadPath(good+":"+dupDir, &r)
		require.ErrorIs(t, err, pipeline.ErrDuplicateFactory)
		require.Contains(t, err.Error(), `element "xor" of plugin dup`)
		require.Contains(t, err.Error(), "by plugin xor")
		require.Len(t, plugin.Loaded(&r), 1, "the first plugin stays loaded")
	})

	t.Run("DuplicateOfBuiltin", func(t *testing.T) {
		var r pipeline.Registry
		require.NoError(t, r.Register(pipeline.Factory{Name: "xor", Origin: "builtin", New: func(*pipeline.Props) (pipeline.Element, error) { return nil, nil }}))
		_, err := plugin.Load(xorSO, &r)
		require.ErrorIs(t, err, pipeline.ErrDuplicateFactory)
		require.Contains(t, err.Error(), "by builtin")
	})
}

func TestLoadErrors(t *testing.T) {
	t.Parallel()
	var r pipeline.Registry
	_, err := plugin.LoadPath(filepath.Join(t.TempDir(), "missing"), &r)
	require.ErrorIs(t, err, os.ErrNotExist)

	dir := t.TempDir()
	require.NoError(t, os.WriteFile(filepath.Join(dir, "junk.so"), []byte("not an ELF"), 0o644))
	require.NoError(t, os.WriteFile(filepath.Join(dir, "readme.txt"), []byte("ignored"), 0o644))
	infos, err := plugin.LoadDir(dir, &r)
	require.Error(t, err)
	require.Contains(t, err.Error(), "junk.so")
	require.Empty(t, infos)

	_, err = plugin.Register("static", &plugin.Descriptor{ABI: plugin.ABIVersion}, &r)
	require.ErrorIs(t, err, plugin.ErrDescriptor)
}
