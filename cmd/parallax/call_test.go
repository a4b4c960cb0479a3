package main

import (
	"bufio"
	"bytes"
	"io"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/parallax-ipc/parallax/internal/routertest"
)

// serve -echo answers call: argument, stdin, usage errors, and a call
// without a server fails at its deadline.
func TestCallServeCommands(t *testing.T) {
	srv := routertest.Start(t, routertest.Owned)
	sock := sockFlag(srv.SocketPath())
	// serve runs in this process beside call: call starts once serve
	// printed that it serves (one process's runtime creates endpoints one
	// after the other here).
	pr, pw := io.Pipe()
	done := make(chan int, 1)
	var errb bytes.Buffer
	go func() {
		code := run([]string{"serve", "-echo", "-n=2", sock, "cli/echo"}, strings.NewReader(""), pw, &errb)
		pw.Close()
		done <- code
	}()
	lines := bufio.NewScanner(pr)
	require.True(t, lines.Scan(), errb.String())
	require.Equal(t, "serving cli/echo", lines.Text())
	var serveOut []string
	scanned := make(chan struct{})
	go func() {
		defer close(scanned)
		for lines.Scan() {
			serveOut = append(serveOut, lines.Text())
		}
	}()
	code, out, errs := runCLI(t, "", "call", "-timeout=30s", sock, "cli/echo", "hello")
	require.Equal(t, exitOK, code, errs)
	require.Contains(t, out, ": hello")
	code, out, errs = runCLI(t, "from stdin", "call", "-timeout=30s", sock, "cli/echo", "-")
	require.Equal(t, exitOK, code, errs)
	require.Contains(t, out, ": from stdin")
	require.Equal(t, exitOK, <-done, errb.String())
	<-scanned
	require.Len(t, serveOut, 2, serveOut)
	require.Contains(t, serveOut[0], ": hello")

	code, _, errs = runCLI(t, "", "call", "-timeout=100ms", sock, "cli/nobody", "x")
	require.Equal(t, exitFailure, code)
	require.Contains(t, errs, "no server")
	code, _, errs = runCLI(t, "", "serve", sock, "cli/echo")
	require.Equal(t, exitUsage, code)
	require.Contains(t, errs, "-echo")
	code, _, _ = runCLI(t, "", "call", sock)
	require.Equal(t, exitUsage, code)
}
