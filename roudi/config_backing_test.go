package roudi

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
)

// File backing validates its directory and names the key at fault.
func TestConfigBackingErrors(t *testing.T) {
	t.Parallel()
	good := t.TempDir()
	file := filepath.Join(t.TempDir(), "plain")
	require.NoError(t, os.WriteFile(file, nil, 0o600))
	open := filepath.Join(t.TempDir(), "open")
	require.NoError(t, os.Mkdir(open, 0o755))
	require.NoError(t, os.Chmod(open, 0o777)) // world-writable, not sticky
	sticky := filepath.Join(t.TempDir(), "sticky")
	require.NoError(t, os.Mkdir(sticky, 0o755))
	require.NoError(t, os.Chmod(sticky, 0o777|os.ModeSticky))

	for _, tc := range []struct {
		name, toml, key, problem string
	}{
		{"unknown backing", `backing = "disk"`, "memory.backing", `must be "memfd" or "file"`},
		{"no path", `backing = "file"`, "memory.path", "must name a directory"},
		{"relative path", `backing = "file"` + "\npath = \"segs\"", "memory.path", "absolute"},
		{"missing dir", fmt.Sprintf("backing = \"file\"\npath = %q", filepath.Join(good, "nope")), "memory.path", "no such file"},
		{"not a dir", fmt.Sprintf("backing = \"file\"\npath = %q", file), "memory.path", "not a directory"},
		{"world-writable", fmt.Sprintf("backing = \"file\"\npath = %q", open), "memory.path", "writable by every user and not sticky"},
		{"hugepages always", fmt.Sprintf("backing = \"file\"\npath = %q\n[publishers]\nhugepages = \"always\"", good), "publishers.hugepages", "cannot be met"},
		{"path without file backing", fmt.Sprintf("path = %q", good), "memory.path", `only used with memory.backing = "file"`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c, err := ParseConfig([]byte("[memory]\n" + tc.toml + "\n"))
			require.NoError(t, err)
			err = c.Validate()
			require.Error(t, err)
			var ce *ConfigError
			require.True(t, errors.As(err, &ce), "%v is not a *ConfigError", err)
			require.Equal(t, tc.key, ce.Key, "%v", err)
			require.Contains(t, ce.Problem, tc.problem)
		})
	}

	for _, dir := range []string{good, sticky} {
		c, err := ParseConfig([]byte(fmt.Sprintf("[memory]\nbacking = \"file\"\npath = %q\n", dir)))
		require.NoError(t, err, dir)
		require.NoError(t, c.Validate(), dir)
		require.Equal(t, BackingFile, c.Memory.Backing)
		ents, err := os.ReadDir(dir)
		require.NoError(t, err)
		require.Empty(t, ents, "the probe file of %s is removed", dir)
	}
}

// parallax-roudi -check-config reports a bad backing directory, naming the
// key, and exits 2.
func TestCheckConfigBacking(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	path := filepath.Join(dir, "roudi.toml")
	require.NoError(t, os.WriteFile(path, []byte(fmt.Sprintf("[memory]\nbacking = \"file\"\npath = %q\n", filepath.Join(dir, "missing"))), 0o600))
	var stderr strings.Builder
	require.Equal(t, 2, checkConfigMain(&stderr, path, "chk", filepath.Join(dir, "r.sock"), dir, ""))
	require.Contains(t, stderr.String(), "memory.path: ")
	require.NoError(t, os.WriteFile(path, []byte(fmt.Sprintf("[memory]\nbacking = \"file\"\npath = %q\n", dir)), 0o600))
	stderr.Reset()
	require.Equal(t, 0, checkConfigMain(&stderr, path, "chk", filepath.Join(dir, "r.sock"), dir, ""), stderr.String())
}
