package roudi

import (
	"bytes"
	"os"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/require"
)

// parallax-roudi -check-config validates the config the router would run
// and exits 0 with "ok" and a summary, or 2 naming the bad key.
func TestMainCheckConfig(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	write := func(name, body string) string {
		p := filepath.Join(dir, name)
		require.NoError(t, os.WriteFile(p, []byte(body), 0o600))
		return p
	}
	sock := filepath.Join(dir, "r.sock")
	for _, tc := range []struct {
		name     string
		args     []string
		code     int
		contains []string
	}{
		{"embedded default", []string{"-check-config", "-socket", sock}, 0,
			[]string{"ok: embedded default config:", "socket " + sock, "(mode 0600, directory 0700)", "4 KiB payload x 4 loans", "log level info"}},
		{"valid file", []string{"-check-config", "-config", write("ok.toml", "domain = \"chk\"\nsocket_mode = \"0666\"\n[publishers]\ndefault_max_payload = \"1KiB\"\n"), "-socket", sock}, 0,
			[]string{"ok: " + filepath.Join(dir, "ok.toml") + ":", `domain "chk"`, "mode 0666", "publishers 1 KiB payload"}},
		{"invalid value", []string{"-check-config", "-config", write("bad.toml", "[publishers]\ndefault_max_payload = 100\n")}, 2,
			[]string{"invalid configuration", "publishers.default_max_payload"}},
		{"removed key", []string{"-check-config", "-config", write("old.toml", "[[pools]]\nchunk_size = \"4KiB\"\ncount = 8\n")}, 2,
			[]string{"invalid configuration", "pools: router-wide pools were removed", "[publishers]"}},
		{"unknown key", []string{"-check-config", "-config", write("typo.toml", "[limits]\nmax_client = 3\n")}, 2,
			[]string{"limits.max_client: unknown key"}},
		{"bad override", []string{"-check-config", "-log-level", "loud", "-socket", sock}, 2,
			[]string{"embedded default config: log_level"}},
		{"missing file", []string{"-check-config", "-config", filepath.Join(dir, "none.toml")}, 2,
			[]string{"invalid configuration", "none.toml", "no such file or directory"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			var stderr bytes.Buffer
			require.Equal(t, tc.code, Main(tc.args, &stderr), stderr.String())
			for _, c := range tc.contains {
				require.Contains(t, stderr.String(), c)
			}
		})
	}
	_, err := os.Stat(sock)
	require.ErrorIs(t, err, os.ErrNotExist, "-check-config starts no router")
}
