//go:build integration

package integration

import (
	"bytes"
	"context"
	"errors"
	"flag"
	"fmt"
	"maps"
	"os"
	"runtime/debug"
	"slices"
	"sort"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/parallax-ipc/parallax"
	"github.com/parallax-ipc/parallax/internal/discovery"
	"github.com/parallax-ipc/parallax/internal/sys"
	"github.com/parallax-ipc/parallax/internal/wire"
)

// The "iso" child (isolation_test.go) is a hostile client of uid 65534: it
// talks to the router through a raw control client, keeps every fd the
// router hands it (a hostile process need not close what the client
// library would), waits until its role is set up, prints "ready", attacks
// every Parallax memfd it holds and every /proc path of the router and of
// the root victim it can try, and prints one line per target class and
// operation:
//
//	row\t<target class>\t<operation>\t<result>
//
// where result is "ALLOWED ...", "fault ..." (a store into a read-only
// mapping raised SIGSEGV), "denied <ERRNO>[,<ERRNO>] ..." or "skipped ...";
// then "done".
func init() { childRoles["iso"] = isoMain }

// Target classes of held memfds.
const (
	classOldMgmt  = "old management segment (every ring, hold table)"
	classOldPool  = "old payload pool (router-wide)"
	classOwnData  = "own data segment"
	classPeerData = "data segment of a connected publisher (RO grant)"
	classConn     = "own connection segment"
	classOther    = "other parallax memfd"
)

// Operations on a held fd.
const (
	opReopenRW  = "reopen /proc/self/fd/N O_RDWR (+pwrite)"
	opMmapRW    = "mmap MAP_SHARED PROT_WRITE"
	opMprotect  = "mmap RO, mprotect PROT_WRITE"
	opRead      = "mmap RO and read"
	opStore     = "store into a PROT_READ mapping"
	opPwrite    = "pwrite"
	opFallocate = "fallocate PUNCH_HOLE|KEEP_SIZE"
	opFtruncate = "ftruncate (grow)"
	opOpenRW    = "open O_RDWR"
	opOpenRO    = "open O_RDONLY"
	opList      = "list"
)

// heldOps is the order the operations run in on a held fd: the ones that
// change contents last.
var heldOps = []string{opRead, opStore, opMmapRW, opMprotect, opReopenRW, opPwrite, opFallocate, opFtruncate}

// isDestructive reports whether writes into class may destroy its
// contents as a whole (payload, whose corruption the victim detects);
// bookkeeping segments get only writes that leave their contents as they
// were (the same byte written back at the end, a hole punched in the last
// page), so a granted write does not take the whole domain down before the
// table is printed.
func isDestructive(class string) bool {
	return class == classOldPool || class == classPeerData || class == classOwnData
}

type isoChild struct {
	domain     string
	myPub      uint32
	oldAttacks bool

	mu                        sync.Mutex
	files                     []*os.File
	conns, connSegs, dataSegs int
	myConns                   map[uint32]bool
	changed                   chan struct{}

	rows map[[2]string]*isoResult
	keys [][2]string
}

// isoResult aggregates the attempts of one (class, operation) row.
type isoResult struct {
	attempts, allowed, faults int
	errnos                    []string
	note                      string
}

func (r *isoResult) String() string {
	switch {
	case r.note != "":
		return r.note
	case r.allowed > 0:
		return fmt.Sprintf("ALLOWED (%d of %d attempts)", r.allowed, r.attempts)
	case r.faults > 0:
		return fmt.Sprintf("fault (%d of %d attempts)", r.faults, r.attempts)
	}
	sort.Strings(r.errnos)
	return fmt.Sprintf("denied %s (%d attempts)", strings.Join(slices.Compact(r.errnos), ","), r.attempts)
}

func (c *isoChild) row(class, op string) *isoResult {
	k := [2]string{class, op}
	r := c.rows[k]
	if r == nil {
		r = &isoResult{}
		c.rows[k] = r
		c.keys = append(c.keys, k)
	}
	return r
}

// record adds one attempt: err nil means the operation succeeded.
func (c *isoChild) record(class, op string, err error) {
	r := c.row(class, op)
	r.attempts++
	switch {
	case err == nil:
		r.allowed++
	case errors.Is(err, errFault):
		r.faults++
	default:
		name := sys.ErrnoName(err)
		if name == "" {
			name = strconv.Quote(err.Error())
		}
		r.errnos = append(r.errnos, name)
	}
}

var errFault = errors.New("fault")

// storeVal is what storeByte stores (a variable, so the store is not
// optimised away).
var storeVal byte

func isoMain(args []string) int {
	fs := flag.NewFlagSet("iso", flag.ContinueOnError)
	socket := fs.String("socket", "", "router socket")
	domain := fs.String("domain", "", "router domain")
	role := fs.String("role", "", "sub-a, pub-b or denied")
	topicA := fs.String("a", "", "the victim's topic")
	topicB := fs.String("b", "", "the topic uid 65534 may publish on")
	owned := fs.Bool("owned", false, "the router runs the owned model: wait for owned grants")
	oldAttacks := fs.Bool("old-attacks", true, "attack old-model segments too")
	routerPID := fs.Int("router", 0, "router pid")
	victimPID := fs.Int("victim", 0, "pid of the root publisher and subscriber of a")
	if err := fs.Parse(args); err != nil {
		return 2
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	c := &isoChild{domain: *domain, oldAttacks: *oldAttacks, changed: make(chan struct{}, 1), rows: map[[2]string]*isoResult{}, myConns: map[uint32]bool{}}
	cl, err := discovery.Dial(ctx, discovery.DialOptions{Socket: *socket, Name: "iso-" + *role})
	if err != nil {
		return childFail("iso", "dial: %v", err)
	}
	defer cl.Close()
	cl.OnPush(c.onPush)

	var want func() bool
	switch *role {
	case "sub-a":
		_, files, err := cl.Request(ctx, &wire.CreateSubscriber{Topic: *topicA, QueueCapacity: 16, Policy: wire.PolicyDiscardOldest}, nil)
		if err != nil {
			return childFail("iso", "subscribe to %s: %v", *topicA, err)
		}
		c.keep(files)
		want = func() bool { return c.conns > 0 && (!*owned || c.connSegs > 0 && c.dataSegs > 0) }
	case "pub-b":
		if _, files, err := cl.Request(ctx, &wire.CreatePublisher{Topic: *topicA}, nil); err == nil {
			c.keep(files)
			return childFail("iso", "publishing on %s was allowed", *topicA)
		}
		m, files, err := cl.Request(ctx, &wire.CreatePublisher{Topic: *topicB}, nil)
		if err != nil {
			return childFail("iso", "publish on %s: %v", *topicB, err)
		}
		c.keep(files)
		c.myPub = m.(*wire.PublisherCreated).PubID
		want = func() bool { return c.conns > 0 && (!*owned || c.connSegs > 0 && c.dataSegs > 0) }
	case "denied":
		for _, m := range []wire.Message{&wire.CreateSubscriber{Topic: *topicA, QueueCapacity: 16}, &wire.CreatePublisher{Topic: *topicA}} {
			if _, files, err := cl.Request(ctx, m, nil); err == nil {
				c.keep(files)
				return childFail("iso", "%s on %s was allowed", m.MessageType(), *topicA)
			}
		}
		want = func() bool { return true }
	default:
		return childFail("iso", "unknown role %q", *role)
	}
	if err := c.waitFor(ctx, want); err != nil {
		return childFail("iso", "set up %s: %v", *role, err)
	}
	fmt.Println("ready")

	if *owned {
		c.attackControl(ctx, cl)
	}
	c.attackHeld()
	c.attackProc("router", *routerPID, true)
	c.attackProc("root publisher+subscriber of a", *victimPID, false)
	for _, k := range c.keys {
		fmt.Printf("row\t%s\t%s\t%s\n", k[0], k[1], c.rows[k])
	}
	fmt.Println("done")
	return 0
}

// onPush keeps a duplicate of every fd pushed (the client closes its own
// after the handler) and counts the grants.
func (c *isoChild) onPush(m wire.Message, files []*os.File) {
	var kept []*os.File
	for _, f := range files {
		if d, err := sys.DupFile(f); err == nil {
			kept = append(kept, d)
		}
	}
	c.mu.Lock()
	c.files = append(c.files, kept...)
	switch m := m.(type) {
	case *wire.ConnectionAdded:
		c.conns++
		c.myConns[m.ConnID] = true
	case *wire.ConnSegmentAdded:
		c.connSegs++
	case *wire.DataSegmentAdded:
		c.dataSegs++
	}
	c.mu.Unlock()
	select {
	case c.changed <- struct{}{}:
	default:
	}
}

func (c *isoChild) keep(files []*os.File) {
	c.mu.Lock()
	c.files = append(c.files, files...)
	c.mu.Unlock()
}

func (c *isoChild) waitFor(ctx context.Context, cond func() bool) error {
	for {
		c.mu.Lock()
		ok := cond()
		c.mu.Unlock()
		if ok {
			return nil
		}
		select {
		case <-c.changed:
		case <-ctx.Done():
			c.mu.Lock()
			defer c.mu.Unlock()
			return fmt.Errorf("grants never arrived (connections %d, connection segments %d, data segments %d): %w", c.conns, c.connSegs, c.dataSegs, ctx.Err())
		}
	}
}

// Control-plane targets of the owned model (design §3.2, §8.2).
const (
	classGetData = "control: GetDataSegment of a connection not its own"
	classGrow    = "control: GrowData of a publisher not its own"
	opRequest    = "request"
)

// attackControl asks the router for the data segments of connections
// 1..32 that are not its own and to grow publishers 1..16 that are not
// its own; a reply is ALLOWED (its fd is kept, and attacked as held).
func (c *isoChild) attackControl(ctx context.Context, cl *discovery.Client) {
	c.mu.Lock()
	mine := maps.Clone(c.myConns)
	c.mu.Unlock()
	for id := uint32(1); id <= 32; id++ {
		if mine[id] {
			continue
		}
		_, files, err := cl.Request(ctx, &wire.GetDataSegment{ConnID: id, Index: 0}, nil)
		c.keep(files)
		c.record(classGetData, opRequest, sentinelErr(err))
	}
	for id := uint32(1); id <= 16; id++ {
		if id == c.myPub {
			continue
		}
		_, files, err := cl.Request(ctx, &wire.GrowData{PubID: id, ChunkSize: 64, Count: 1, Reason: wire.GrowExhausted}, nil)
		c.keep(files)
		c.record(classGrow, opRequest, sentinelErr(err))
	}
}

// sentinelErr replaces a router error by the name of the parallax
// sentinel it matches, so that rows aggregate.
func sentinelErr(err error) error {
	if err == nil {
		return nil
	}
	for _, s := range []error{parallax.ErrPermissionDenied, parallax.ErrTopicNotFound, parallax.ErrInvalidArgument,
		parallax.ErrNotSupported, parallax.ErrLimit, parallax.ErrProtocol} {
		if errors.Is(err, s) {
			return errors.New(s.Error())
		}
	}
	return err
}

// classify names the class of a held memfd from its /proc/self/fd link.
func (c *isoChild) classify(link string) (string, bool) {
	name, ok := strings.CutPrefix(link, "/memfd:parallax-")
	if !ok {
		return "", false
	}
	name = strings.TrimSuffix(name, " (deleted)")
	switch {
	case strings.HasPrefix(name, "plx:"+c.domain+":p"):
		pub, _, _ := strings.Cut(strings.TrimPrefix(name, "plx:"+c.domain+":p"), ".")
		if id, err := strconv.ParseUint(pub, 10, 32); err == nil && c.myPub != 0 && uint32(id) == c.myPub {
			return classOwnData, true
		}
		return classPeerData, true
	case strings.HasPrefix(name, "plx:"+c.domain+":c"):
		return classConn, true
	case name == c.domain+"-mgmt":
		return classOldMgmt, true
	case strings.HasPrefix(name, c.domain+"-pool"):
		return classOldPool, true
	}
	return classOther, true
}

// attackHeld runs every operation on every Parallax memfd among this
// process's fds.
func (c *isoChild) attackHeld() {
	ents, err := os.ReadDir("/proc/self/fd")
	if err != nil {
		c.record("own fds", opList, err)
		return
	}
	for _, e := range ents {
		fd, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		link, err := os.Readlink("/proc/self/fd/" + e.Name())
		if err != nil {
			continue
		}
		class, ok := c.classify(link)
		if !ok {
			continue
		}
		if !c.oldAttacks && (class == classOldMgmt || class == classOldPool) {
			for _, op := range heldOps {
				c.row(class, op).note = "skipped (old model; run with PARALLAX_ISOLATION_STRICT=1)"
			}
			continue
		}
		st, err := sys.Fstat(fd)
		if err != nil || st.Size <= 0 {
			c.record(class, "fstat", fmt.Errorf("fstat fd %d: %w (size %d)", fd, err, st.Size))
			continue
		}
		for _, op := range heldOps {
			c.record(class, op, attackFd(fd, st.Size, op, isDestructive(class)))
		}
	}
}

// attackFd runs one operation on fd (size bytes); nil means it worked.
func attackFd(fd int, size int64, op string, destructive bool) error {
	switch op {
	case opRead:
		m, err := sys.Mmap(fd, 0, int(size), 0, sys.PROT_READ, sys.MAP_SHARED)
		if err != nil {
			return err
		}
		_ = m[len(m)-1] // a fault here would kill the child: mapping reads work
		return sys.Munmap(m)
	case opStore:
		m, err := sys.Mmap(fd, 0, int(size), 0, sys.PROT_READ, sys.MAP_SHARED)
		if err != nil {
			return err
		}
		defer func() { _ = sys.Munmap(m) }()
		return storeByte(m, len(m)-1)
	case opMmapRW:
		m, err := sys.Mmap(fd, 0, int(size), 0, sys.PROT_READ|sys.PROT_WRITE, sys.MAP_SHARED)
		if err != nil {
			return err
		}
		return sys.Munmap(m)
	case opMprotect:
		m, err := sys.Mmap(fd, 0, int(size), 0, sys.PROT_READ, sys.MAP_SHARED)
		if err != nil {
			return err
		}
		defer func() { _ = sys.Munmap(m) }()
		return sys.Mprotect(m, sys.PROT_READ|sys.PROT_WRITE)
	case opReopenRW:
		f, err := os.OpenFile(fmt.Sprintf("/proc/self/fd/%d", fd), os.O_RDWR, 0)
		if err != nil {
			return err
		}
		defer f.Close()
		_ = pwriteAttack(int(f.Fd()), size, destructive) // shows the harm; the open was the breach
		return nil
	case opPwrite:
		return pwriteAttack(fd, size, destructive)
	case opFallocate:
		if destructive {
			return sys.PunchHole(fd, 0, size)
		}
		page := int64(os.Getpagesize())
		return sys.PunchHole(fd, max(0, size-page), page)
	case opFtruncate:
		return sys.Ftruncate(fd, size+int64(os.Getpagesize()))
	}
	return fmt.Errorf("unknown operation %q", op)
}

// pwriteAttack writes 0xA5 over the whole file when destructive, else the
// last byte back as it was read (a zero when it cannot be read: the last
// byte is padding in every segment layout).
func pwriteAttack(fd int, size int64, destructive bool) error {
	if !destructive {
		b := make([]byte, 1)
		if _, err := syscall.Pread(fd, b, size-1); err != nil {
			b[0] = 0
		}
		_, err := syscall.Pwrite(fd, b, size-1)
		return err
	}
	buf := bytes.Repeat([]byte{0xA5}, 64<<10)
	for off := int64(0); off < size; off += int64(len(buf)) {
		n := min(int64(len(buf)), size-off)
		if _, err := syscall.Pwrite(fd, buf[:n], off); err != nil {
			return err
		}
	}
	return nil
}

// storeByte stores m[i] into itself; on a read-only mapping the SIGSEGV
// becomes a panic (SetPanicOnFault) that is returned as errFault.
func storeByte(m []byte, i int) (err error) {
	old := debug.SetPanicOnFault(true)
	defer debug.SetPanicOnFault(old)
	defer func() {
		if r := recover(); r != nil {
			err = fmt.Errorf("%w: %v", errFault, r)
		}
	}()
	m[i] = storeVal
	return nil
}

// attackProc tries /proc/<pid>/fd/*, map_files/* (and mem) of another
// process: open O_RDWR and O_RDONLY of every fd number up to 256 and of
// every map_files entry it can list.
func (c *isoChild) attackProc(who string, pid int, mem bool) {
	if pid <= 0 {
		return
	}
	dir := fmt.Sprintf("/proc/%d", pid)
	fdClass, mfClass := who+" /proc/<pid>/fd/*", who+" /proc/<pid>/map_files/*"
	_, err := os.ReadDir(dir + "/fd")
	c.record(fdClass, opList, err)
	for n := range 256 {
		for _, op := range []string{opOpenRW, opOpenRO} {
			err := openProbe(fmt.Sprintf("%s/fd/%d", dir, n), op)
			if errors.Is(err, os.ErrNotExist) {
				continue // no such fd: not an attempt
			}
			c.record(fdClass, op, err)
		}
	}
	ents, err := os.ReadDir(dir + "/map_files")
	c.record(mfClass, opList, err)
	for _, e := range ents {
		for _, op := range []string{opOpenRW, opOpenRO} {
			c.record(mfClass, op, openProbe(dir+"/map_files/"+e.Name(), op))
		}
	}
	if mem {
		for _, op := range []string{opOpenRW, opOpenRO} {
			c.record(who+" /proc/<pid>/mem", op, openProbe(dir+"/mem", op))
		}
	}
}

func openProbe(path, op string) error {
	flag := os.O_RDONLY
	if op == opOpenRW {
		flag = os.O_RDWR
	}
	f, err := os.OpenFile(path, flag, 0)
	if err != nil {
		return err
	}
	return f.Close()
}
