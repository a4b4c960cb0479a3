// Layout pinning for the shared-memory ABI. It uses unsafe only to read
// sizes and offsets of the layout structs; it touches no memory.

package ringbuf

import (
	"testing"
	"unsafe"

	"github.com/stretchr/testify/require"
)

func TestLayout(t *testing.T) {
	t.Parallel()
	var h ringHeader
	var n notifierBlock
	for _, c := range []struct {
		name      string
		got, want uintptr
	}{
		{"ringHeader size", unsafe.Sizeof(h), 512},
		{"Magic", unsafe.Offsetof(h.Magic), 0},
		{"Version", unsafe.Offsetof(h.Version), 8},
		{"Policy", unsafe.Offsetof(h.Policy), 12},
		{"Capacity", unsafe.Offsetof(h.Capacity), 16},
		{"Head", unsafe.Offsetof(h.Head), 128},
		{"Tail", unsafe.Offsetof(h.Tail), 256},
		{"Dropped", unsafe.Offsetof(h.Dropped), 264},
		{"WaitFlag", unsafe.Offsetof(h.WaitFlag), 384},
		{"WaitSeq", unsafe.Offsetof(h.WaitSeq), 388},
		{"Closed", unsafe.Offsetof(h.Closed), 392},
		{"HeaderSize", uintptr(HeaderSize), 512},
		{"notifierBlock size", unsafe.Sizeof(n), 128},
		{"n.Magic", unsafe.Offsetof(n.Magic), 0},
		{"n.Version", unsafe.Offsetof(n.Version), 8},
		{"n.Closed", unsafe.Offsetof(n.Closed), 12},
		{"n.Seq", unsafe.Offsetof(n.Seq), 16},
		{"n.Sleeping", unsafe.Offsetof(n.Sleeping), 20},
		{"n.Wakes", unsafe.Offsetof(n.Wakes), 24},
		{"n.Sleeps", unsafe.Offsetof(n.Sleeps), 32},
		{"NotifierSize", uintptr(NotifierSize), 128},
	} {
		require.Equal(t, c.want, c.got, c.name)
	}
	require.Equal(t, 512+8*1024, Size(1024))
	// Hot words written by different sides never share a 128-byte line.
	require.NotEqual(t, offHead/lineSize, offTail/lineSize)
	require.NotEqual(t, offTail/lineSize, offWaitFlag/lineSize)
	require.NotEqual(t, offHead/lineSize, offWaitFlag/lineSize)
	require.Equal(t, uintptr(0), offHead%8)
	require.Equal(t, uintptr(0), offTail%8)
}

func TestWordHelpersRejectMisalignment(t *testing.T) {
	t.Parallel()
	mem := make([]byte, 64)
	require.Panics(t, func() { word64(mem, 4) })
	require.Panics(t, func() { word32(mem, 2) })
	require.Panics(t, func() { word64(mem, 64) })
	require.False(t, aligned8(mem[1:]))
	require.True(t, aligned8(mem))
}
