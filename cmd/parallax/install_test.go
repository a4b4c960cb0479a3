package main

import (
	"bytes"
	"encoding/json"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
)

// `go install github.com/parallax-ipc/parallax/cmd/...@version` builds the
// commands from the module alone: no replace or exclude directive (go
// install refuses them), no file outside the module or left out of version
// control, no build step. This test builds ./cmd/... from a copy holding only
// the files git would commit, as a fresh git repository, and checks the
// binaries' version output names that commit.
func TestBuildFromCleanCopy(t *testing.T) {
	if testing.Short() {
		t.Skip("builds both commands from a copy of the module (-short)")
	}
	t.Parallel()
	goBin, err := exec.LookPath("go")
	if err != nil {
		t.Skipf("no go command in $PATH: %v", err)
	}
	if _, err := exec.LookPath("git"); err != nil {
		t.Skip("git not installed")
	}
	root, err := filepath.Abs("../..")
	require.NoError(t, err)
	env := append(os.Environ(), "GOFLAGS=-buildvcs=true -mod=readonly", "GOWORK=off", "GOPROXY=off", "GIT_CONFIG_NOSYSTEM=1", "GIT_CONFIG_GLOBAL="+os.DevNull)
	runIn := func(dir, name string, args ...string) string {
		t.Helper()
		cmd := exec.Command(name, args...)
		cmd.Dir, cmd.Env = dir, env
		var stderr bytes.Buffer
		cmd.Stderr = &stderr
		out, err := cmd.Output()
		require.NoError(t, err, "%s %s: %s", name, strings.Join(args, " "), stderr.String())
		return string(out)
	}

	var mod struct{ Replace, Exclude []any }
	require.NoError(t, json.Unmarshal([]byte(runIn(root, goBin, "mod", "edit", "-json")), &mod))
	require.Empty(t, mod.Replace, "go.mod replace directives break go install ...@version")
	require.Empty(t, mod.Exclude, "go.mod exclude directives break go install ...@version")

	cp := t.TempDir()
	files := strings.Split(runIn(root, "git", "ls-files", "-z", "--cached", "--others", "--exclude-standard"), "\x00")
	for _, f := range files {
		if f == "" {
			continue
		}
		src := filepath.Join(root, f)
		st, err := os.Lstat(src)
		if err != nil || !st.Mode().IsRegular() {
			continue // deleted in the work tree, or a symlink
		}
		copyFile(t, src, filepath.Join(cp, f), st.Mode().Perm())
	}
	runIn(cp, "git", "init", "-q")
	runIn(cp, "git", "add", "-A")
	runIn(cp, "git", "-c", "user.name=test", "-c", "user.email=test@example.com", "commit", "-q", "-m", "copy")
	rev := strings.TrimSpace(runIn(cp, "git", "rev-parse", "HEAD"))

	bin := filepath.Join(cp, "bin")
	runIn(cp, goBin, "build", "-o", bin+"/", "./cmd/...")
	out := runIn(cp, filepath.Join(bin, "parallax"), "version")
	require.Contains(t, out, "control protocol v")
	require.Contains(t, out, "module github.com/parallax-ipc/parallax ")
	require.Contains(t, out, "commit "+rev+" ")
	require.NotContains(t, out, "(modified)")
	t.Logf("parallax version from the copy:\n%s", out)
	out = runIn(cp, filepath.Join(bin, "parallax-roudi"), "-version")
	require.Contains(t, out, "parallax-roudi ")
	require.Contains(t, out, "commit "+rev+" ")
}

func copyFile(t *testing.T, src, dst string, perm os.FileMode) {
	t.Helper()
	require.NoError(t, os.MkdirAll(filepath.Dir(dst), 0o755))
	in, err := os.Open(src)
	require.NoError(t, err)
	defer in.Close()
	out, err := os.OpenFile(dst, os.O_CREATE|os.O_WRONLY|os.O_TRUNC, perm)
	require.NoError(t, err)
	_, err = io.Copy(out, in)
	require.NoError(t, err)
	require.NoError(t, out.Close())
}
