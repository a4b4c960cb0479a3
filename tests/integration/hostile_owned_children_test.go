//go:build integration

package integration

import (
	"encoding/binary"
	"fmt"
	"os"
	"regexp"
	"syscall"

	"github.com/parallax-ipc/parallax"
	"github.com/parallax-ipc/parallax/ringbuf"
)

// What a hostile owned-model client can do to its own connections: it
// maps each connection segment it was granted read-write (its own fds,
// found through /proc/self/fd) and writes the rings directly, past the
// client library. A publisher can push garbage into its data rings, a
// subscriber into its return rings; neither can reach anybody else's.

var connSegName = regexp.MustCompile(`plx:[^:]+:c[0-9]+ `)

// ownConnSegments maps every connection segment this process holds an fd
// of, read-write, once per connection.
func ownConnSegments() ([]*ringbuf.Conn, error) {
	ms, err := ownConnMappings()
	out := make([]*ringbuf.Conn, len(ms))
	for i, m := range ms {
		out[i] = m.conn
	}
	return out, err
}

// connMapping is a connection segment mapped read-write: attached, and its
// bytes, for a hostile client that writes past the ring's API.
type connMapping struct {
	conn *ringbuf.Conn
	mem  []byte
}

// ownConnMappings is ownConnSegments with each segment's bytes.
func ownConnMappings() ([]connMapping, error) {
	ents, err := os.ReadDir("/proc/self/fd")
	if err != nil {
		return nil, err
	}
	seen := map[uint32]bool{}
	var out []connMapping
	for _, e := range ents {
		l, err := os.Readlink("/proc/self/fd/" + e.Name())
		if err != nil || !connSegName.MatchString(l) {
			continue
		}
		var fd int
		if _, err := fmt.Sscan(e.Name(), &fd); err != nil {
			continue
		}
		var st syscall.Stat_t
		if err := syscall.Fstat(fd, &st); err != nil || st.Size < ringbuf.ConnHeaderSize {
			continue
		}
		mem, err := syscall.Mmap(fd, 0, int(st.Size), syscall.PROT_READ|syscall.PROT_WRITE, syscall.MAP_SHARED)
		if err != nil {
			return nil, fmt.Errorf("map %s read-write: %w", l, err)
		}
		// The connection header, at the offsets its documented layout
		// gives (ringbuf TestConnLayout).
		le := binary.LittleEndian
		d := ringbuf.ConnDesc{
			Policy: ringbuf.Policy(le.Uint32(mem[12:])), ConnID: le.Uint32(mem[16:]), PubID: le.Uint32(mem[20:]), SubID: le.Uint32(mem[24:]),
			MaxHeld: le.Uint32(mem[28:]), DataCap: le.Uint32(mem[32:]), ReturnCap: le.Uint32(mem[36:]), Bound: le.Uint32(mem[40:]),
		}
		if seen[d.ConnID] {
			_ = syscall.Munmap(mem)
			continue
		}
		c, err := ringbuf.AttachConn(mem, d)
		if err != nil {
			return nil, fmt.Errorf("attach %s: %w", l, err)
		}
		seen[d.ConnID] = true
		out = append(out, connMapping{c, mem}) // mapped until the process exits
	}
	return out, nil
}

// Garbage refs: slot 31 of segment 0 with generation 0, which no loan
// has (a subscriber can tell: a ref into its publisher's segment with a
// plausible generation it cannot, and reads whatever is there, which is
// the most a hostile publisher can do to its own subscribers), and with a
// generation the publisher never gave out (it checks every return).
const (
	garbageData   = parallax.ChunkRef(0x0000_0000_1f00_0000)
	garbageReturn = parallax.ChunkRef(0x0000_0000_1f00_0077)
)

// pushGarbage pushes garbageData into the data rings (publisher) or
// garbageReturn into the return rings (subscriber) of every connection of
// this process and wakes the other end; it returns how many it reached.
func pushGarbage(data bool) (int, error) {
	conns, err := ownConnSegments()
	if err != nil {
		return 0, err
	}
	n := 0
	for _, c := range conns {
		r, w, ref := c.ReturnRing(), c.ReturnWake(), garbageReturn
		if data {
			r, w, ref = c.DataRing(), c.DataWake(), garbageData
		}
		if _, err := r.TryPush(ref); err != nil {
			return n, fmt.Errorf("push garbage into connection %d: %w", c.Desc().ConnID, err)
		}
		_ = w.Notify()
		n++
	}
	return n, nil
}
