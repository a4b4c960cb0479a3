// Package deploy_test checks the deployment files in this directory: the
// systemd unit verifies with systemd-analyze, and the flags its commands
// pass are flags parallax-roudi accepts, with the shipped configuration.
package deploy_test

import (
	"bufio"
	"bytes"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/parallax-ipc/parallax/roudi"
)

const (
	unitFile = "systemd/parallax-roudi.service"
	binary   = "/usr/local/bin/parallax-roudi"
	confPath = "/etc/parallax/roudi.toml"
)

// unitValues returns the values of key in the unit's [Service] section.
func unitValues(t *testing.T, key string) []string {
	t.Helper()
	f, err := os.Open(unitFile)
	require.NoError(t, err)
	defer f.Close()
	var vals []string
	section := ""
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		switch {
		case line == "" || line[0] == '#' || line[0] == ';':
		case line[0] == '[':
			section = line
		case section == "[Service]":
			if k, v, ok := strings.Cut(line, "="); ok && k == key {
				vals = append(vals, v)
			}
		}
	}
	require.NoError(t, sc.Err())
	return vals
}

// The unit's ExecStartPre and ExecStart run parallax-roudi with flags it
// accepts: each command line, run as -check-config against the shipped
// roudi.toml, passes.
func TestUnitExecFlags(t *testing.T) {
	t.Parallel()
	cmds := append(unitValues(t, "ExecStartPre"), unitValues(t, "ExecStart")...)
	require.Len(t, cmds, 2)
	conf, err := filepath.Abs("systemd/roudi.toml")
	require.NoError(t, err)
	for _, c := range cmds {
		require.NotContains(t, c, `"`, "quoting is not handled here: keep the command line plain")
		f := strings.Fields(c)
		require.Equal(t, binary, f[0])
		args := f[1:]
		require.Contains(t, args, "-config")
		check := []string{"-check-config"}
		for _, a := range args {
			if a == confPath {
				a = conf
			}
			if a != "-check-config" {
				check = append(check, a)
			}
		}
		var stderr bytes.Buffer
		require.Equal(t, 0, roudi.Main(check, &stderr), "%s\n%s", c, stderr.String())
		require.Contains(t, stderr.String(), "ok: ")
		require.Contains(t, stderr.String(), "socket /run/parallax/default.sock (mode 0660")
	}
	// The socket lives in the directory systemd creates.
	require.Equal(t, []string{"parallax"}, unitValues(t, "RuntimeDirectory"))
}

// systemd-analyze verify accepts the unit without a warning (unknown keys
// and bad values are warnings, not failures, so stderr must be empty).
func TestUnitVerifies(t *testing.T) {
	t.Parallel()
	sa, err := exec.LookPath("systemd-analyze")
	if err != nil {
		t.Skip("systemd-analyze not installed (apt-get install systemd)")
	}
	data, err := os.ReadFile(unitFile)
	require.NoError(t, err)
	// verify insists that the commands exist: point them at one that does.
	exe, err := os.Executable()
	require.NoError(t, err)
	unit := filepath.Join(t.TempDir(), filepath.Base(unitFile))
	require.NoError(t, os.WriteFile(unit, bytes.ReplaceAll(data, []byte(binary), []byte(exe)), 0o644))
	cmd := exec.Command(sa, "verify", "--man=no", unit)
	var stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stderr, &stderr
	err = cmd.Run()
	out := stderr.String()
	if err != nil && regexp.MustCompile(`(?i)failed to (connect|initialize)|not been booted with systemd|System has not been booted`).MatchString(out) {
		t.Skipf("systemd-analyze verify cannot run here: %s", out)
	}
	require.NoError(t, err, out)
	require.Empty(t, out, "systemd-analyze verify warnings")
}

// The router's flags in the container example (the Containerfile's CMD and
// compose.yaml's roudi command, both JSON arrays) are flags parallax-roudi
// accepts. The container example itself is not run here (no container
// runtime).
func TestContainerRouterFlags(t *testing.T) {
	t.Parallel()
	for file, re := range map[string]*regexp.Regexp{
		"container/Containerfile": regexp.MustCompile(`(?m)^CMD (\[.*\])$`),
		"container/compose.yaml":  regexp.MustCompile(`(?ms)^  roudi:\n.*?^    command: (\[.*?\])$`),
	} {
		data, err := os.ReadFile(file)
		require.NoError(t, err)
		m := re.FindSubmatch(data)
		require.NotNil(t, m, "%s: no router command found", file)
		var args []string
		require.NoError(t, json.Unmarshal(m[1], &args), "%s: %s", file, m[1])
		var stderr bytes.Buffer
		require.Equal(t, 0, roudi.Main(append(args, "-check-config"), &stderr), "%s: %q\n%s", file, args, stderr.String())
	}
}
