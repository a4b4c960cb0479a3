package subscriber_test

import (
	"bufio"
	"io"
	"os/exec"
	"testing"

	"github.com/stretchr/testify/require"
)

// A lineChild is a child process the test drives line by line: commands to
// its stdin (say), its stdout's lines expected in order (expect).
type lineChild struct {
	t     *testing.T
	stdin io.WriteCloser
	out   *bufio.Scanner
}

// startLineChild starts cmd and returns it with stop, which closes its
// stdin (the children end then) and requires a clean exit, naming what in
// the failure: defer it.
func startLineChild(t *testing.T, cmd *exec.Cmd, what string) (c *lineChild, stop func()) {
	t.Helper()
	stdin, err := cmd.StdinPipe()
	require.NoError(t, err)
	stdout, err := cmd.StdoutPipe()
	require.NoError(t, err)
	require.NoError(t, cmd.Start())
	stop = func() {
		stdin.Close()
		require.NoError(t, cmd.Wait(), what)
	}
	return &lineChild{t: t, stdin: stdin, out: bufio.NewScanner(stdout)}, stop
}

// expect requires the child's next line to be want.
func (c *lineChild) expect(want string) {
	c.t.Helper()
	require.True(c.t, c.out.Scan(), "child output ended (%v), want %q", c.out.Err(), want)
	require.Equal(c.t, want, c.out.Text())
}

// say writes the line cmd to the child's stdin.
func (c *lineChild) say(cmd string) {
	c.t.Helper()
	_, err := io.WriteString(c.stdin, cmd+"\n")
	require.NoError(c.t, err)
}
