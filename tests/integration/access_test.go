//go:build integration

package integration

import (
	"bufio"
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/parallax-ipc/parallax"
	"github.com/parallax-ipc/parallax/internal/testutil"
	"github.com/parallax-ipc/parallax/publisher"
	"github.com/parallax-ipc/parallax/subscriber"
)

func init() { childRoles["acl"] = aclMain }

// nobody is the uid and gid the access-control children run as.
const nobody = 65534

// aclConfig lets every uid connect (socket_mode 0666) and restricts two
// topic families: secret/* to root, shared/* to uid (publish) and gid
// (subscribe) 65534 — so root may not subscribe there.
const aclConfig = `socket_mode = "0666"
` + testConfig + `
[[access]]
topic = "secret/*"
publish_uids = [0]
subscribe_uids = [0]
[[access]]
topic = "shared/*"
publish_uids = [65534]
subscribe_gids = [65534]
`

// aclMain is a publisher or subscriber that reports, one line each:
// "denied <errors.Is(err, ErrPermissionDenied)> <err>" or "ok", then
// (publisher) "sent <n>" / (subscriber) "got <n>", and then
// "payload-fds <n> payload-maps <n>": how many payload segments the process
// holds or maps at that point. A publisher waits for stdin EOF before
// closing.
func aclMain(args []string) int {
	fs := flag.NewFlagSet("acl", flag.ContinueOnError)
	socket := fs.String("socket", "", "router socket")
	topic := fs.String("topic", "", "topic")
	role := fs.String("role", "pub", "pub or sub")
	n := fs.Int("n", 3, "samples")
	if err := fs.Parse(args); err != nil {
		return 2
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	switch *role {
	case "pub":
		pub, err := publisher.New(ctx, *topic, publisher.Options{Socket: *socket})
		if err != nil {
			fmt.Printf("denied %t %v\n", errors.Is(err, parallax.ErrPermissionDenied), err)
			fmt.Println(payloadHoldings())
			return 0
		}
		defer pub.Close()
		fmt.Println("ok")
		if err := pub.WaitForSubscribers(ctx, 1); err != nil {
			return childFail("acl", "wait for subscriber: %v", err)
		}
		for i := range *n {
			if err := pub.Send(fmt.Appendf(nil, "m%d", i)); err != nil {
				return childFail("acl", "send: %v", err)
			}
		}
		fmt.Printf("sent %d\n", *n)
		fmt.Println(payloadHoldings())
		_, _ = io.Copy(io.Discard, os.Stdin)
	case "sub":
		sub, err := subscriber.New(ctx, *topic, subscriber.Options{Socket: *socket})
		if err != nil {
			fmt.Printf("denied %t %v\n", errors.Is(err, parallax.ErrPermissionDenied), err)
			fmt.Println(payloadHoldings())
			return 0
		}
		defer sub.Close()
		fmt.Println("ok")
		for i := range *n {
			s, err := sub.Take(ctx)
			if err != nil {
				return childFail("acl", "take: %v", err)
			}
			if got, want := string(s.Bytes()), fmt.Sprintf("m%d", i); got != want {
				return childFail("acl", "sample %d is %q, want %q", i, got, want)
			}
			_ = s.Release()
		}
		fmt.Printf("got %d\n", *n)
		fmt.Println(payloadHoldings())
	default:
		return childFail("acl", "unknown role %q", *role)
	}
	return 0
}

// payloadSegment matches a payload segment's memfd: a router-wide pool
// of the shared model ("...-pool<N>-...") or a publisher data segment of
// the owned model ("plx:<domain>:p<pub>.<index>").
var payloadSegment = regexp.MustCompile(`memfd:parallax-.*(-pool|:p\d+\.\d+)`)

// payloadHoldings counts the payload segments among this process's fds
// and mappings.
func payloadHoldings() string {
	fds := 0
	ents, _ := os.ReadDir("/proc/self/fd")
	for _, e := range ents {
		if l, err := os.Readlink("/proc/self/fd/" + e.Name()); err == nil && payloadSegment.MatchString(l) {
			fds++
		}
	}
	maps := 0
	data, _ := os.ReadFile("/proc/self/maps")
	for line := range strings.SplitSeq(string(data), "\n") {
		if payloadSegment.MatchString(line) {
			maps++
		}
	}
	return fmt.Sprintf("payload-fds %d payload-maps %d", fds, maps)
}

// aclChild starts the acl role as uid/gid 65534 and returns its command,
// stdout lines and stdin.
func aclChild(t *testing.T, bin string, args ...string) (*exec.Cmd, <-chan string, io.WriteCloser) {
	t.Helper()
	cmd := exec.Command(bin, append([]string{"-test.run=^$", "--"}, args...)...)
	cmd.Env = append(os.Environ(), "PARALLAX_TEST_CHILD=acl")
	cmd.Dir = filepath.Dir(bin)
	cmd.Stderr = os.Stderr
	cmd.SysProcAttr = &syscall.SysProcAttr{Credential: &syscall.Credential{Uid: nobody, Gid: nobody}}
	stdin, err := cmd.StdinPipe()
	require.NoError(t, err)
	stdout, err := cmd.StdoutPipe()
	require.NoError(t, err)
	require.NoError(t, cmd.Start())
	t.Cleanup(func() {
		stdin.Close()
		_ = cmd.Process.Kill()
		_ = cmd.Wait()
	})
	return cmd, readLines(stdout), stdin
}

// readLines sends the lines read from r until EOF.
func readLines(stdout io.Reader) <-chan string {
	lines := make(chan string, 16)
	go func() {
		defer close(lines)
		sc := bufio.NewScanner(stdout)
		for sc.Scan() {
			lines <- sc.Text()
		}
	}()
	return lines
}

func nextLine(t *testing.T, lines <-chan string) string {
	t.Helper()
	select {
	case l, ok := <-lines:
		require.True(t, ok, "child exited early")
		return l
	case <-time.After(time.Minute):
		t.Fatal("no line from child within a minute")
	}
	return ""
}

// TestAccessControlAcrossUIDs runs publishers and subscribers as uid/gid
// 65534 against a router run by root: a rule that does not list them
// refuses them with ErrPermissionDenied and hands them no payload
// segment; a rule that lists them lets them exchange samples, while root
// itself is refused there.
func TestAccessControlAcrossUIDs(t *testing.T) {
	testutil.RequiresRoot(t)
	t.Parallel()
	r := startRouterWith(t, aclConfig)
	// t.TempDir() is 0700: let uid 65534 reach the socket.
	for d := filepath.Dir(r.Socket); d != os.TempDir() && d != "/"; d = filepath.Dir(d) {
		require.NoError(t, os.Chmod(d, 0o711))
	}
	st, err := os.Stat(r.Socket)
	require.NoError(t, err)
	require.Equal(t, os.FileMode(0o666), st.Mode().Perm(), "socket_mode")
	bin := testutil.WorldExecutableCopy(t)

	// Refused by the secret/* rule.
	for _, role := range []string{"pub", "sub"} {
		cmd, lines, _ := aclChild(t, bin, "-socket", r.Socket, "-topic", "secret/plans", "-role", role)
		require.Regexp(t, `^denied true .*permission denied.*uid 65534`, nextLine(t, lines), role)
		require.Equal(t, "payload-fds 0 payload-maps 0", nextLine(t, lines), "a refused %s must get no payload segment", role)
		require.NoError(t, cmd.Wait())
	}

	// Allowed by the shared/* rule: a publisher and a subscriber, both
	// uid 65534, exchange samples.
	_, subLines, _ := aclChild(t, bin, "-socket", r.Socket, "-topic", "shared/news", "-role", "sub", "-n", "3")
	require.Equal(t, "ok", nextLine(t, subLines))
	_, pubLines, pubStdin := aclChild(t, bin, "-socket", r.Socket, "-topic", "shared/news", "-role", "pub", "-n", "3")
	require.Equal(t, "ok", nextLine(t, pubLines))
	require.Equal(t, "sent 3", nextLine(t, pubLines))
	require.Regexp(t, `^payload-fds \d+ payload-maps [1-9]`, nextLine(t, pubLines), "the publisher maps its payload segments")
	require.Equal(t, "got 3", nextLine(t, subLines))
	require.Regexp(t, `^payload-fds \d+ payload-maps [1-9]`, nextLine(t, subLines))
	pubStdin.Close()

	// Root is not special: shared/* subscriptions are for gid 65534.
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	_, err = subscriber.New(ctx, "shared/news", subscriber.Options{Socket: r.Socket})
	require.ErrorIs(t, err, parallax.ErrPermissionDenied)
	pub, err := publisher.New(ctx, "secret/plans", publisher.Options{Socket: r.Socket})
	require.NoError(t, err, "root may publish on secret/*")
	require.NoError(t, pub.Close())
}
