package main

import (
	"bytes"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
)

// runCLI runs the CLI in-process and returns exit code, stdout, stderr.
func runCLI(t *testing.T, stdin string, args ...string) (int, string, string) {
	t.Helper()
	var out, errb bytes.Buffer
	code := run(args, strings.NewReader(stdin), &out, &errb)
	return code, out.String(), errb.String()
}

func TestHelpAndUnknown(t *testing.T) {
	code, out, _ := runCLI(t, "", "help")
	require.Equal(t, exitOK, code)
	require.Contains(t, out, "version")
	code, _, errs := runCLI(t, "", "frobnicate")
	require.Equal(t, exitUsage, code)
	require.Contains(t, errs, `unknown command "frobnicate"`)
	for _, h := range []string{"-h", "--help"} {
		code, out, _ = runCLI(t, "", h)
		require.Equal(t, exitOK, code)
		require.Contains(t, out, "commands:")
	}
	code, out, _ = runCLI(t, "", "version")
	require.Equal(t, exitOK, code)
	require.Contains(t, out, "control protocol v")
}
