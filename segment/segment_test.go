package segment_test

import (
	"bytes"
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"strconv"
	"sync"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/parallax-ipc/parallax/internal/sys"
	"github.com/parallax-ipc/parallax/internal/testutil"
	"github.com/parallax-ipc/parallax/segment"
)

func fill(b []byte) {
	for i := range b {
		b[i] = byte(i * 7)
	}
}

func TestHeap(t *testing.T) {
	t.Parallel()
	h, err := segment.NewHeap(10000)
	require.NoError(t, err)
	require.Equal(t, 10000, h.Len())
	require.Len(t, h.Bytes(), 10000)
	require.Equal(t, segment.KindHeap, h.Kind())
	require.Equal(t, os.Getpagesize(), h.PageSize())
	require.Equal(t, segment.Handle{Kind: segment.KindHeap, Size: 10000, PageSize: os.Getpagesize()}, h.Handle())
	require.Equal(t, make([]byte, 10000), h.Bytes(), "fresh memory is zeroed")
	fill(h.Bytes())
	require.Equal(t, byte(9999*7%256), h.Bytes()[9999])
	require.NoError(t, h.Close())
	require.NoError(t, h.Close())

	_, err = segment.NewHeap(0)
	require.ErrorIs(t, err, sys.EINVAL)
}

func TestMemfd(t *testing.T) {
	t.Parallel()
	const size = 3*4096 + 100
	m, err := segment.NewMemfd(t.Name(), size, segment.MemfdOptions{})
	require.NoError(t, err)
	defer m.Close()

	require.Equal(t, size, m.Len())
	require.Equal(t, segment.KindMemfd, m.Kind())
	require.Equal(t, os.Getpagesize(), m.PageSize())
	require.Empty(t, m.FallbackReason())
	require.False(t, m.ReadOnly())
	require.Equal(t, segment.Handle{Name: t.Name(), Kind: segment.KindMemfd, Size: size, PageSize: os.Getpagesize()}, m.Handle())

	link, err := sys.FdPath(int(m.File().Fd()))
	require.NoError(t, err)
	require.Equal(t, "/memfd:parallax-"+t.Name()+" (deleted)", link)

	seals, err := m.Seals()
	require.NoError(t, err)
	require.Equal(t, segment.SealMask, seals&segment.SealMask)

	// The seals bind the creator too.
	require.ErrorIs(t, sys.Ftruncate(int(m.File().Fd()), 0), sys.EPERM)
	require.ErrorIs(t, sys.AddSeals(int(m.File().Fd()), sys.F_SEAL_WRITE), sys.EPERM)

	fill(m.Bytes())
	require.NoError(t, m.Close())
	require.NoError(t, m.Close())
	_, err = m.ReadOnlyFile()
	require.ErrorIs(t, err, os.ErrClosed)
	_, err = m.Seals()
	require.ErrorIs(t, err, os.ErrClosed)
}

func TestMemfdNoPrefault(t *testing.T) {
	t.Parallel()
	m, err := segment.NewMemfd(t.Name(), 1<<20, segment.MemfdOptions{NoPrefault: true})
	require.NoError(t, err)
	defer m.Close()
	fill(m.Bytes())
	require.Equal(t, byte(12345*7%256), m.Bytes()[12345])
}

// TestMemfdFile checks the unmapped creation: sealed and sized like
// NewMemfd, zero until written, pwrite lands in the memory a mapping of
// the fd sees, and the seals bind the creator.
func TestMemfdFile(t *testing.T) {
	t.Parallel()
	const size = 3*4096 + 100
	f, err := segment.NewMemfdFile(t.Name(), size)
	require.NoError(t, err)
	link, err := sys.FdPath(int(f.Fd()))
	require.NoError(t, err)
	require.Equal(t, "/memfd:parallax-"+t.Name()+" (deleted)", link)
	_, err = f.WriteAt([]byte("head"), 8)
	require.NoError(t, err)
	_, err = f.WriteAt([]byte("tail"), 2*4096)
	require.NoError(t, err)
	require.ErrorIs(t, sys.Ftruncate(int(f.Fd()), 0), sys.EPERM)
	m, err := segment.Open(f, segment.OpenOptions{ExpectedSize: size, RequireSeals: true})
	require.NoError(t, err)
	defer m.Close()
	require.Equal(t, segment.KindMemfd, m.Kind())
	want := make([]byte, size)
	copy(want[8:], "head")
	copy(want[2*4096:], "tail")
	require.Equal(t, want, m.Bytes())

	_, err = segment.NewMemfdFile(t.Name(), 0)
	require.ErrorIs(t, err, sys.EINVAL)
}

func TestCloseConcurrent(t *testing.T) {
	t.Parallel()
	m, err := segment.NewMemfd(t.Name(), 4096, segment.MemfdOptions{})
	require.NoError(t, err)
	var wg sync.WaitGroup
	errs := make([]error, 8)
	for i := range errs {
		wg.Go(func() { errs[i] = m.Close() })
	}
	wg.Wait()
	for _, err := range errs {
		require.NoError(t, err)
	}
}

// TestSealsOtherProcess hands the memfd to a child, which tries to resize
// it and must get EPERM.
func TestSealsOtherProcess(t *testing.T) {
	t.Parallel()
	const size = 64 << 10
	m, err := segment.NewMemfd(t.Name(), size, segment.MemfdOptions{})
	require.NoError(t, err)
	defer m.Close()

	cmd := testutil.ChildCommand(t, "ftruncate", []*os.File{m.File()}, strconv.Itoa(size))
	out, err := cmd.Output()
	require.NoError(t, err, "child output: %s", out)
	require.Equal(t, "EPERM\n", string(out))
	require.Equal(t, size, m.Len())
	st, err := sys.Fstat(int(m.File().Fd()))
	require.NoError(t, err)
	require.EqualValues(t, size, st.Size)
}

// TestFDPassing maps the same memfd in a child: each side sees the other's
// bytes.
func TestFDPassing(t *testing.T) {
	t.Parallel()
	const size = 256 << 10
	m, err := segment.NewMemfd(t.Name(), size, segment.MemfdOptions{})
	require.NoError(t, err)
	defer m.Close()
	fill(m.Bytes()[:4096])

	cmd := testutil.ChildCommand(t, "mapwrite", []*os.File{m.File()}, strconv.Itoa(size))
	require.NoError(t, cmd.Run())
	require.Equal(t, "written by child", string(m.Bytes()[4096:4096+16]))
	require.Equal(t, byte(0xAB), m.Bytes()[size-1])
}

func TestReadOnly(t *testing.T) {
	t.Parallel()
	const size = 8192
	m, err := segment.NewMemfd(t.Name(), size, segment.MemfdOptions{})
	require.NoError(t, err)
	defer m.Close()
	fill(m.Bytes())

	ro, err := m.ReadOnlyFile()
	require.NoError(t, err)
	defer ro.Close()

	// Mapping the read-only fd read-write is refused by the kernel.
	_, err = segment.Open(ro, segment.OpenOptions{})
	require.ErrorIs(t, err, sys.EACCES)

	sub, err := segment.Open(ro, segment.OpenOptions{ReadOnly: true, ExpectedSize: size, RequireSeals: true})
	require.NoError(t, err)
	defer sub.Close()
	require.True(t, sub.ReadOnly())
	require.True(t, sub.Handle().ReadOnly)
	require.Equal(t, t.Name(), sub.Handle().Name)
	require.Equal(t, segment.KindMemfd, sub.Kind())
	require.True(t, bytes.Equal(m.Bytes(), sub.Bytes()))

	// Nor can the read-only mapping be made writable.
	require.ErrorIs(t, sys.Mprotect(sub.Bytes(), sys.PROT_READ|sys.PROT_WRITE), sys.EACCES)

	// A write through a read-only mapping faults (in a child, which
	// survives it thanks to debug.SetPanicOnFault).
	ro2, err := m.ReadOnlyFile()
	require.NoError(t, err)
	defer ro2.Close()
	out, err := testutil.ChildCommand(t, "rowrite", []*os.File{ro2}).Output()
	require.NoError(t, err, "child output: %s", out)
	require.Contains(t, string(out), "fault")
	require.Equal(t, byte(0), m.Bytes()[0], "the write did not land")
}

func TestOpenChecks(t *testing.T) {
	t.Parallel()
	m, err := segment.NewMemfd(t.Name(), 4096, segment.MemfdOptions{})
	require.NoError(t, err)
	defer m.Close()
	ro, err := m.ReadOnlyFile()
	require.NoError(t, err)
	defer ro.Close()

	_, err = segment.Open(ro, segment.OpenOptions{ReadOnly: true, ExpectedSize: 8192})
	require.ErrorIs(t, err, segment.ErrSizeMismatch)

	// A regular file supports no seals.
	path := filepath.Join(t.TempDir(), "plain")
	require.NoError(t, os.WriteFile(path, make([]byte, 4096), 0o600))
	f, err := os.Open(path)
	require.NoError(t, err)
	defer f.Close()
	_, err = segment.Open(f, segment.OpenOptions{ReadOnly: true, RequireSeals: true})
	require.ErrorIs(t, err, segment.ErrUnsealed)

	// An unsealed memfd is refused too.
	fd, err := sys.MemfdCreate("parallax-unsealed", sys.MFD_CLOEXEC|sys.MFD_ALLOW_SEALING)
	require.NoError(t, err)
	uf := os.NewFile(uintptr(fd), "unsealed")
	defer uf.Close()
	require.NoError(t, sys.Ftruncate(fd, 4096))
	_, err = segment.Open(uf, segment.OpenOptions{RequireSeals: true})
	require.ErrorIs(t, err, segment.ErrUnsealed)

	// An empty file cannot be mapped.
	empty := filepath.Join(t.TempDir(), "empty")
	require.NoError(t, os.WriteFile(empty, nil, 0o600))
	ef, err := os.Open(empty)
	require.NoError(t, err)
	defer ef.Close()
	_, err = segment.Open(ef, segment.OpenOptions{ReadOnly: true})
	require.ErrorIs(t, err, segment.ErrSizeMismatch)

	// Without checks the plain file opens as a file segment.
	s, err := segment.Open(f, segment.OpenOptions{ReadOnly: true})
	require.NoError(t, err)
	require.Equal(t, segment.KindFile, s.Kind())
	require.Equal(t, path, s.Handle().Path)
	require.NoError(t, s.Close())
}

func TestFile(t *testing.T) {
	t.Parallel()
	path := filepath.Join(t.TempDir(), "seg")
	w, err := segment.CreateFile(path, 20000)
	require.NoError(t, err)
	defer w.Close()
	require.Equal(t, segment.KindFile, w.Kind())
	require.Equal(t, segment.Handle{Name: path, Kind: segment.KindFile, Size: 20000, PageSize: os.Getpagesize(), Path: path}, w.Handle())
	fill(w.Bytes())

	r, err := segment.OpenFile(path, true)
	require.NoError(t, err)
	defer r.Close()
	require.True(t, bytes.Equal(w.Bytes(), r.Bytes()))
	require.True(t, r.ReadOnly())

	rw, err := segment.OpenFile(path, false)
	require.NoError(t, err)
	copy(rw.Bytes(), "hello")
	require.NoError(t, rw.Close())
	require.Equal(t, "hello", string(r.Bytes()[:5]), "writes of another mapping are visible")

	_, err = segment.CreateFile(path, 4096)
	require.ErrorIs(t, err, fs.ErrExist)
	_, err = segment.OpenFile(filepath.Join(t.TempDir(), "missing"), true)
	require.ErrorIs(t, err, fs.ErrNotExist)
	_, err = segment.CreateFile(filepath.Join(t.TempDir(), "zero"), 0)
	require.ErrorIs(t, err, sys.EINVAL)
}

func TestKindString(t *testing.T) {
	t.Parallel()
	for k, want := range map[segment.Kind]string{
		segment.KindUnknown: "unknown", segment.KindHeap: "heap", segment.KindMemfd: "memfd",
		segment.KindHugepage: "hugepage", segment.KindFile: "file", segment.Kind(42): "Kind(42)",
	} {
		require.Equal(t, want, k.String())
	}
	require.False(t, errors.Is(segment.ErrSizeMismatch, segment.ErrUnsealed))
}
