package main

import (
	"fmt"
	"regexp"
	"sync"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/parallax-ipc/parallax/internal/routertest"
)

func TestInspect(t *testing.T) {
	t.Parallel()
	code, out, _ := runCLI(t, "", "inspect")
	require.Equal(t, exitOK, code)
	for _, el := range []string{"testsrc", "ipcsink", "ipcsrc", "ipccall", "checksum", "fakesink"} {
		require.Regexp(t, "(?m)^"+el+" ", out)
	}
	code, out, _ = runCLI(t, "", "inspect", "testsrc")
	require.Equal(t, exitOK, code)
	require.Contains(t, out, "testsrc (source, builtin)")
	require.Regexp(t, `size\s+bytes\s+4KiB`, out)
	require.Regexp(t, `pattern\s+enum\s+counter\s+zero\|counter\|random\|none`, out)

	code, _, errs := runCLI(t, "", "inspect", "ipcsnk")
	require.Equal(t, exitUsage, code)
	require.Contains(t, errs, `did you mean "ipcsink"?`)
}

func TestPluginsWithoutPath(t *testing.T) {
	t.Setenv("PARALLAX_PLUGIN_PATH", "")
	code, out, _ := runCLI(t, "", "plugins")
	require.Equal(t, exitOK, code)
	require.Contains(t, out, "no plugin directories")

	t.Setenv("PARALLAX_PLUGIN_PATH", t.TempDir()+"/missing")
	code, _, errs := runCLI(t, "", "plugins")
	require.Equal(t, exitFailure, code)
	require.Contains(t, errs, "missing")
}

func TestLaunch(t *testing.T) {
	t.Parallel()
	code, out, errs := runCLI(t, "", "launch", "-v", "testsrc num-buffers=100 size=1KiB ! checksum ! fakesink")
	require.Equal(t, exitOK, code, errs)
	require.Contains(t, out, "done: 100 buffers, 100.0 KiB")
	require.Regexp(t, `checksum0: checksum crc32c:[0-9a-f]{8} buffers=100 bytes=102400`, out)
	require.Contains(t, out, "eos", "-v prints events")

	// A syntax error: column, hint and caret; usage exit code.
	code, _, errs = runCLI(t, "", "launch", "testsrc", "!", "fakesnk")
	require.Equal(t, exitUsage, code)
	require.Contains(t, errs, `column 11: unknown element "fakesnk" (did you mean "fakesink"?)`)
	require.Contains(t, errs, "\n            ^")

	// An element's error names the node; exit 1.
	code, _, errs = runCLI(t, "", "launch", "testsrc ! identity name=bad error-after=5 ! fakesink")
	require.Equal(t, exitFailure, code)
	require.Contains(t, errs, "bad")

	code, _, errs = runCLI(t, "", "launch")
	require.Equal(t, exitUsage, code, errs)
}

func TestLaunchNoRouter(t *testing.T) {
	t.Parallel()
	code, _, errs := runCLI(t, "", "launch", "-socket", t.TempDir()+"/none.sock", "testsrc ! ipcsink topic=x")
	require.Equal(t, exitNoRouter, code, errs)
	require.Contains(t, errs, "no router")
}

func TestLaunchAcrossRouter(t *testing.T) {
	t.Parallel()
	srv := routertest.Start(t, "")
	var wg sync.WaitGroup
	var rxCode int
	var rxOut, rxErr string
	wg.Add(1)
	go func() {
		defer wg.Done()
		rxCode, rxOut, rxErr = runCLI(t, "", "launch", sockFlag(srv.SocketPath()), "ipcsrc topic=v num-buffers=300 ! checksum ! fakesink")
	}()
	code, out, errs := runCLI(t, "", "launch", sockFlag(srv.SocketPath()),
		"testsrc num-buffers=300 size=64KiB pattern=random ! checksum ! ipcsink topic=v wait-subscribers=1 block-timeout=1m")
	wg.Wait()
	require.Equal(t, exitOK, code, errs)
	require.Equal(t, exitOK, rxCode, rxErr)
	require.Contains(t, out, "ipcsink0: ipcsink published=300 bytes=19660800 zero-copy=300 copied=0 copied-bytes=0")
	sum := regexp.MustCompile(`checksum0: checksum (\S+)`)
	require.Equal(t, sum.FindStringSubmatch(out)[1], sum.FindStringSubmatch(rxOut)[1], "%s\n%s", out, rxOut)
	require.Contains(t, rxOut, fmt.Sprintf("done: 300 buffers, %s", "18.8 MiB"))
}
