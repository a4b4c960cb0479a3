package roudi

import (
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/parallax-ipc/parallax/discovery"
)

func TestDomainLockOneRouterPerDomain(t *testing.T) {
	t.Parallel()
	runtime := t.TempDir()
	newCfg := func(domain, sock string) *Config {
		cfg, err := ParseConfig([]byte(testPools))
		require.NoError(t, err)
		cfg.Domain, cfg.Socket, cfg.RuntimeDir = domain, sock, runtime
		return cfg
	}
	s1 := filepath.Join(t.TempDir(), "one.sock")
	first, err := New(newCfg("lk", s1), Options{Logger: discardLogger()})
	require.NoError(t, err)
	defer first.Close()

	// Same domain, another socket: refused, naming the live router.
	_, err = New(newCfg("lk", filepath.Join(t.TempDir(), "two.sock")), Options{Logger: discardLogger()})
	require.ErrorIs(t, err, discovery.ErrRouterRunning)
	require.Contains(t, err.Error(), fmt.Sprintf("pid %d", os.Getpid()))
	require.Contains(t, err.Error(), s1)

	// The command exits with code 3.
	var stderr bytes.Buffer
	code := Main([]string{"-domain", "lk", "-runtime-dir", runtime, "-socket", filepath.Join(t.TempDir(), "three.sock")}, &stderr)
	require.Equal(t, 3, code, stderr.String())
	require.Contains(t, stderr.String(), s1)

	// Another domain name in the same runtime directory runs beside it.
	other, err := New(newCfg("lk2", filepath.Join(t.TempDir(), "other.sock")), Options{Logger: discardLogger()})
	require.NoError(t, err)
	require.NoError(t, other.Close())

	// Closed, the lock is released and its file removed.
	require.NoError(t, first.Close())
	_, err = os.Stat(filepath.Join(runtime, "lk.lock"))
	require.ErrorIs(t, err, os.ErrNotExist)
	again, err := New(newCfg("lk", filepath.Join(t.TempDir(), "again.sock")), Options{Logger: discardLogger()})
	require.NoError(t, err)
	require.NoError(t, again.Close())
}
