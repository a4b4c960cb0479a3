//go:build integration

package integration

import (
	"bufio"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/parallax-ipc/parallax/internal/testutil"
)

// childTimeout bounds every wait on a child process.
const childTimeout = 5 * time.Minute

// A proc is a running child process of the test: its stdout lines arrive on
// a channel, its stdin is a pipe the test writes control lines to.
type proc struct {
	t     *testing.T
	name  string
	cmd   *exec.Cmd
	stdin io.WriteCloser
	lines chan string   // closed at stdout EOF
	done  chan struct{} // closed once the child exited; err is then set
	err   error

	mu  sync.Mutex
	all []string
}

// spawn starts a child in role ("pub" or "sub") with args; cleanup kills it
// (by PID) if the test did not wait for it.
func spawn(t *testing.T, name, role string, args ...string) *proc {
	t.Helper()
	return startProc(t, name, testutil.ChildCommand(t, role, nil, args...))
}

// spawnAs is spawn for a child of another uid (and gid): bin is a copy of
// the test binary that uid may run (testutil.WorldExecutableCopy).
func spawnAs(t *testing.T, name, role, bin string, uid uint32, args ...string) *proc {
	t.Helper()
	cmd := exec.Command(bin, append([]string{"-test.run=^$", "--"}, args...)...)
	cmd.Env = append(os.Environ(), "PARALLAX_TEST_CHILD="+role)
	cmd.Dir = filepath.Dir(bin)
	cmd.Stderr = os.Stderr
	cmd.SysProcAttr = &syscall.SysProcAttr{Credential: &syscall.Credential{Uid: uid, Gid: uid}}
	return startProc(t, name, cmd)
}

// startProc starts cmd and follows its stdout.
func startProc(t *testing.T, name string, cmd *exec.Cmd) *proc {
	t.Helper()
	stdout, err := cmd.StdoutPipe()
	require.NoError(t, err)
	stdin, err := cmd.StdinPipe()
	require.NoError(t, err)
	require.NoError(t, cmd.Start(), "start %s", name)
	p := &proc{t: t, name: name, cmd: cmd, stdin: stdin, lines: make(chan string, 4096), done: make(chan struct{})}
	go func() {
		sc := bufio.NewScanner(stdout)
		for sc.Scan() {
			p.mu.Lock()
			p.all = append(p.all, sc.Text())
			p.mu.Unlock()
			p.lines <- sc.Text()
		}
		close(p.lines)
		p.err = cmd.Wait()
		close(p.done)
	}()
	t.Cleanup(func() {
		_ = stdin.Close()
		select {
		case <-p.done:
		case <-time.After(10 * time.Second):
			_ = cmd.Process.Kill() // our own child, by PID
			<-p.done
		}
	})
	return p
}

// expect waits for the next stdout line starting with prefix (skipping
// others) and returns its fields after the prefix.
func (p *proc) expect(prefix string) []string {
	p.t.Helper()
	deadline := time.After(childTimeout)
	for {
		select {
		case line, ok := <-p.lines:
			if !ok {
				p.t.Fatalf("%s exited (%v) before printing %q; output:\n%s", p.name, p.waitErr(), prefix, p.output())
			}
			if rest, found := strings.CutPrefix(line, prefix); found {
				return strings.Fields(rest)
			}
		case <-deadline:
			p.t.Fatalf("%s did not print %q within %v; output:\n%s", p.name, prefix, childTimeout, p.output())
		}
	}
}

// send writes a control line to the child's stdin.
func (p *proc) send(line string) {
	p.t.Helper()
	_, err := io.WriteString(p.stdin, line+"\n")
	require.NoError(p.t, err, "write to %s", p.name)
}

// wait closes stdin, waits for the child to exit 0 and returns all its
// stdout lines.
func (p *proc) wait() []string {
	p.t.Helper()
	_ = p.stdin.Close()
	err := p.waitErr()
	for range p.lines { // closed before the child is reaped
	}
	if err != nil {
		p.t.Fatalf("%s failed: %v; output:\n%s", p.name, err, p.output())
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	return append([]string(nil), p.all...)
}

func (p *proc) waitErr() error {
	select {
	case <-p.done:
		return p.err
	case <-time.After(childTimeout):
		_ = p.cmd.Process.Kill() // our own child, by PID
		<-p.done
		return fmt.Errorf("%s did not exit within %v (killed)", p.name, childTimeout)
	}
}

func (p *proc) output() string {
	p.mu.Lock()
	defer p.mu.Unlock()
	return strings.Join(p.all, "\n")
}

// pubResult is a publisher's "result" line.
type pubResult struct {
	ID, Count   uint64
	CRC         uint64
	Subscribers int
}

func parsePubResult(t *testing.T, f []string) pubResult {
	t.Helper()
	require.Len(t, f, 4, "result line")
	return pubResult{ID: atoi(t, f[0]), Count: atoi(t, f[1]), CRC: atoi(t, f[2]), Subscribers: int(atoi(t, f[3]))}
}

// subReport is what a subscriber printed at the end.
type subReport struct {
	Pubs       map[uint64]subPub
	Dropped    uint64
	Publishers uint64
	Total      uint64
	Maps       map[uint64]string // seq -> "dev inode fileoff path"
}

type subPub struct{ Count, CRC, First, Last uint64 }

func parseSubReport(t *testing.T, lines []string) subReport {
	t.Helper()
	r := subReport{Pubs: map[uint64]subPub{}, Maps: map[uint64]string{}}
	done := false
	for _, l := range lines {
		f := strings.Fields(l)
		if len(f) == 0 {
			continue
		}
		switch f[0] {
		case "pub":
			require.Len(t, f, 6, "pub line %q", l)
			r.Pubs[atoi(t, f[1])] = subPub{Count: atoi(t, f[2]), CRC: atoi(t, f[3]), First: atoi(t, f[4]), Last: atoi(t, f[5])}
		case "dropped":
			r.Dropped = atoi(t, f[1])
		case "publishers":
			r.Publishers = atoi(t, f[1])
		case "done":
			r.Total = atoi(t, f[1])
			done = true
		case "map":
			r.Maps[atoi(t, f[1])] = strings.Join(f[2:], " ")
		}
	}
	require.True(t, done, "subscriber printed no done line:\n%s", strings.Join(lines, "\n"))
	return r
}

func parseMaps(t *testing.T, lines []string) map[uint64]string {
	t.Helper()
	m := map[uint64]string{}
	for _, l := range lines {
		if f := strings.Fields(l); len(f) > 1 && f[0] == "map" {
			m[atoi(t, f[1])] = strings.Join(f[2:], " ")
		}
	}
	return m
}

func atoi(t *testing.T, s string) uint64 {
	t.Helper()
	v, err := strconv.ParseUint(s, 10, 64)
	require.NoError(t, err)
	return v
}
