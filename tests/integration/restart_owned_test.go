//go:build integration

package integration

import (
	"bufio"
	"context"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/parallax-ipc/parallax/internal/discovery"
	"github.com/parallax-ipc/parallax/internal/sys"
	"github.com/parallax-ipc/parallax/internal/wire"
	"github.com/parallax-ipc/parallax/roudi"
)

// Router restart in the owned model (docs/design/memory-ownership.md §4.3,
// §8.7): forged segments handed back are refused, and a publisher that
// dies during the restart leaves no segment behind.

func init() { childRoles["rsforge"] = restartForgeMain }

// forger is a raw control client of the first router that keeps every fd
// it is granted, then resumes with the second router handing back a
// forged data segment.
type forger struct {
	mu    sync.Mutex
	data  map[uint32]map[uint16]forgedSeg // by publisher and index
	conns []*os.File
}

type forgedSeg struct {
	desc wire.DataSegDesc
	f    *os.File
}

func (fg *forger) onPush(m wire.Message, files []*os.File) {
	fg.mu.Lock()
	defer fg.mu.Unlock()
	if len(files) != 1 {
		return
	}
	d, err := sys.DupFile(files[0])
	if err != nil {
		return
	}
	switch m := m.(type) {
	case *wire.DataSegmentAdded:
		if fg.data[m.Seg.PubID] == nil {
			fg.data[m.Seg.PubID] = map[uint16]forgedSeg{}
		}
		fg.data[m.Seg.PubID][m.Seg.Index] = forgedSeg{desc: m.Seg, f: d}
	case *wire.ConnSegmentAdded:
		fg.conns = append(fg.conns, d)
	default:
		d.Close()
	}
}

func inodeOf(f *os.File) uint64 {
	st, err := f.Stat()
	if err != nil {
		return 0
	}
	return st.Sys().(*syscall.Stat_t).Ino
}

// restartForgeMain publishes on "forge-<mode>" (and, for mode "other",
// subscribes to "rs" to be granted the honest publisher's segment),
// prints "ready", and on a "resume" line dials the router again and hands
// back, as its publisher's segment 0, a forged fd: mode "mode" its real
// segment chmodded 0644, "unsealed" a memfd of the right name and size
// without seals, "inode" its real segment with another inode claimed,
// "other" the segment of the publisher of "rs". It prints "refused <err>"
// or "adopted", then exits at stdin EOF.
func restartForgeMain(args []string) int {
	fs := flag.NewFlagSet("rsforge", flag.ContinueOnError)
	socket := fs.String("socket", "", "")
	domain := fs.String("domain", "", "")
	mode := fs.String("mode", "", "")
	if fs.Parse(args) != nil {
		return 2
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	cl, err := discovery.Dial(ctx, discovery.DialOptions{Socket: *socket, Name: "rsforge"})
	if err != nil {
		return childFail("rsforge", "dial: %v", err)
	}
	fg := &forger{data: map[uint32]map[uint16]forgedSeg{}}
	cl.OnPush(fg.onPush)
	topic := "forge-" + *mode
	rep, _, err := cl.Request(ctx, &wire.CreatePublisher{Topic: topic}, nil)
	if err != nil {
		return childFail("rsforge", "create publisher: %v", err)
	}
	pubID := rep.(*wire.PublisherCreated).PubID
	if *mode == "other" {
		if _, _, err := cl.Request(ctx, &wire.CreateSubscriber{Topic: "rs", QueueCapacity: 16, Policy: wire.PolicyDiscardOldest}, nil); err != nil {
			return childFail("rsforge", "create subscriber: %v", err)
		}
	}
	if err := cl.Barrier(ctx); err != nil {
		return childFail("rsforge", "barrier: %v", err)
	}
	// The subscriber's grants follow the connection's creation, possibly
	// after the barrier: wait for the rs publisher's segment.
	for *mode == "other" {
		fg.mu.Lock()
		n := len(fg.data)
		fg.mu.Unlock()
		if n >= 2 {
			break
		}
		select {
		case <-ctx.Done():
			return childFail("rsforge", "no segment of the rs publisher granted")
		case <-time.After(5 * time.Millisecond):
		}
	}
	welcome := cl.Welcome()
	fmt.Println("ready")
	in := bufio.NewScanner(os.Stdin)
	if !in.Scan() || in.Text() != "resume" {
		return childFail("rsforge", "no resume line")
	}
	fg.mu.Lock()
	own, ok := fg.data[pubID][0]
	var other *forgedSeg
	for id, segs := range fg.data {
		if s, ok := segs[0]; ok && id != pubID {
			other = &s
		}
	}
	fg.mu.Unlock()
	if !ok {
		return childFail("rsforge", "no data segment granted")
	}
	desc, f, ino := own.desc, own.f, inodeOf(own.f)
	switch *mode {
	case "mode":
		if err := f.Chmod(0o644); err != nil {
			return childFail("rsforge", "chmod: %v", err)
		}
	case "unsealed":
		fd, err := sys.MemfdCreate(fmt.Sprintf("parallax-plx:%s:p%d.0", *domain, pubID), sys.MFD_CLOEXEC|sys.MFD_ALLOW_SEALING)
		if err != nil {
			return childFail("rsforge", "memfd: %v", err)
		}
		f = os.NewFile(uintptr(fd), "forged")
		if err := f.Truncate(int64(desc.Size)); err != nil {
			return childFail("rsforge", "truncate: %v", err)
		}
		if err := f.Chmod(0o600); err != nil {
			return childFail("rsforge", "chmod: %v", err)
		}
		ino = inodeOf(f)
	case "inode":
		ino++
	case "other":
		if other == nil {
			return childFail("rsforge", "no segment of the rs publisher granted")
		}
		desc = other.desc
		desc.PubID, desc.Index, desc.ReadOnly = pubID, 0, false
		f, ino = other.f, inodeOf(other.f)
	default:
		return childFail("rsforge", "unknown mode %q", *mode)
	}
	var nc *discovery.Client
	for nc == nil {
		if nc, err = discovery.Dial(ctx, discovery.DialOptions{Socket: *socket, Name: "rsforge"}); err != nil {
			select {
			case <-ctx.Done():
				return childFail("rsforge", "redial: %v", err)
			case <-time.After(20 * time.Millisecond):
			}
		}
	}
	m := &wire.Resume{OldClient: welcome.ClientID, Token: welcome.ResumeToken,
		Publishers: []wire.ResumePublisher{{PubID: pubID, Topic: topic}},
		OwnedPubs:  []wire.ResumePubMemory{{PubID: pubID, Data: []wire.ResumeDataSeg{{Seg: desc, Inode: ino}}}}}
	if _, _, err := nc.Request(ctx, m, []*os.File{f}); err != nil {
		fmt.Printf("refused %v\n", err)
	} else {
		fmt.Println("adopted")
	}
	for in.Scan() {
	}
	nc.Close()
	cl.Close()
	return 0
}

// TestRouterRestartForgedSegments: clients that hand a forged data segment
// back to a restarted router of the owned model — not mode 0600, not
// sealed, another inode than claimed, the segment of another publisher —
// are refused with an error naming the failed check and not adopted; the
// honest stream across the restart loses and corrupts nothing.
func TestRouterRestartForgedSegments(t *testing.T) {
	dir, sock, domain, r1 := startRestartableRouter(t, "rsf", ownedConfig)
	sub, pub := startStream(t, sock)
	want := map[string]string{
		"mode":     "mode is not 0600",
		"unsealed": "not sealed as the router seals",
		"inode":    "inode differs from the claimed one",
		"other":    "not the memfd the router named for it",
	}
	forgers := map[string]*proc{}
	for mode := range want {
		p := spawn(t, "forge-"+mode, "rsforge", "-socket", sock, "-domain", domain, "-mode", mode)
		p.expect("ready")
		forgers[mode] = p
	}
	killRouter(t, r1)
	srv, ctx := startSuccessorWith(t, ownedConfig, domain, sock, dir, 10*time.Second)
	require.True(t, srv.Adopted())
	waitCtx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	require.True(t, waitSnapshot(waitCtx, srv, func(s roudi.Snapshot) bool { return len(s.Clients) == 2 }),
		"the honest clients did not resume")
	for _, p := range forgers {
		p.send("resume") // all within the grace period
	}
	for mode, p := range forgers {
		f := p.expect("refused ")
		msg := strings.Join(f, " ")
		require.Contains(t, msg, want[mode], "forger %s", mode)
		require.Contains(t, msg, "permission denied", "forger %s: the error code crosses the socket", mode)
		p.wait()
	}
	// Nobody adopted a forged publisher: only the honest one is there.
	snap, err := srv.Snapshot(waitCtx)
	require.NoError(t, err)
	for _, tp := range snap.Topics {
		require.False(t, strings.HasPrefix(tp.Name, "forge-") && len(tp.Publishers) > 0, "forged publisher adopted on %s", tp.Name)
	}
	got, first, last := stopStream(t, sub, pub)
	require.Equal(t, uint64(1), first)
	require.Equal(t, last, got, "the honest stream lost samples")
	sub.wait()
	pub.wait()
}

// segmentHolders lists the processes that map or hold an fd of a memfd
// whose name contains name.
func segmentHolders(name string) []string {
	var out []string
	procs, _ := os.ReadDir("/proc")
	for _, p := range procs {
		dir := filepath.Join("/proc", p.Name())
		if maps, err := os.ReadFile(filepath.Join(dir, "maps")); err == nil && strings.Contains(string(maps), name) {
			out = append(out, p.Name()+" maps")
		}
		fds, _ := os.ReadDir(filepath.Join(dir, "fd"))
		for _, fd := range fds {
			if l, err := os.Readlink(filepath.Join(dir, "fd", fd.Name())); err == nil && strings.Contains(l, name) {
				out = append(out, p.Name()+" fd "+fd.Name())
			}
		}
	}
	return out
}

// TestRouterRestartPublisherDies: a publisher SIGKILLed while no router
// runs does not resume; at the end of the grace period its subscriber is
// told (publisher gone), drains and lets go, and no process — the new
// router included, which adopts owned memory only from its owners — maps
// or holds the dead publisher's data segments any more.
func TestRouterRestartPublisherDies(t *testing.T) {
	dir, sock, domain, r1 := startRestartableRouter(t, "rsd", ownedConfig)
	sub, pub := startStream(t, sock)
	name := fmt.Sprintf("plx:%s:p", domain)
	require.NotEmpty(t, segmentHolders(name), "the publisher's segments are mapped while it runs")
	killRouter(t, r1)
	require.NoError(t, pub.cmd.Process.Signal(syscall.SIGKILL))
	_ = pub.waitErr()
	srv, ctx := startSuccessorWith(t, ownedConfig, domain, sock, dir, time.Second)
	require.True(t, srv.Adopted())
	waitCtx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	// The subscriber resumes alone; after the grace its connection goes.
	require.True(t, waitSnapshot(waitCtx, srv, func(s roudi.Snapshot) bool { return len(s.Clients) == 1 && len(s.Connections) == 0 }),
		"the subscriber did not resume, or its connection to the dead publisher stayed")
	var holders []string
	for {
		if holders = segmentHolders(name); len(holders) == 0 {
			break
		}
		select {
		case <-waitCtx.Done():
			t.Fatalf("the dead publisher's segments are still held: %v", holders)
		case <-time.After(5 * time.Millisecond):
		}
	}
	sub.send("stop 0")
	f := sub.expect("done ")
	require.Equal(t, "0", f[2], "the subscriber saw corrupted or reordered samples")
	require.Equal(t, "0", f[3], "the subscriber took stale references")
	sub.wait()
}
