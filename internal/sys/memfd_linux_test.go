//go:build linux

package sys_test

import (
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/parallax-ipc/parallax/internal/sys"
	"github.com/parallax-ipc/parallax/internal/testutil"
)

func TestHugeFlag(t *testing.T) {
	t.Parallel()
	f, err := sys.HugeFlag(2 << 20)
	require.NoError(t, err)
	require.Equal(t, sys.MFD_HUGETLB|sys.MFD_HUGE_2MB, f)
	f, err = sys.HugeFlag(1 << 30)
	require.NoError(t, err)
	require.Equal(t, sys.MFD_HUGETLB|sys.MFD_HUGE_1GB, f)
	for _, bad := range []int{0, -4096, 3 << 20} {
		_, err = sys.HugeFlag(bad)
		require.ErrorIs(t, err, sys.EINVAL, "size %d", bad)
	}
}

func TestRoundUp(t *testing.T) {
	t.Parallel()
	for _, tc := range [][3]int{{0, 4096, 0}, {1, 4096, 4096}, {4096, 4096, 4096}, {4097, 4096, 8192}, {3 << 20, 2 << 20, 4 << 20}} {
		require.Equal(t, tc[2], sys.RoundUp(tc[0], tc[1]), "RoundUp(%d, %d)", tc[0], tc[1])
	}
	require.Equal(t, 0, sys.PageSize()&(sys.PageSize()-1))
}

func newMemfd(t *testing.T, flags int) int {
	t.Helper()
	fd, err := sys.MemfdCreate("parallax-"+t.Name(), flags)
	require.NoError(t, err)
	t.Cleanup(func() { require.NoError(t, sys.Close(fd)) })
	return fd
}

func TestMemfdSealsAndReopen(t *testing.T) {
	t.Parallel()
	fd := newMemfd(t, sys.MFD_CLOEXEC|sys.MFD_ALLOW_SEALING|sys.MFD_NOEXEC_SEAL)
	require.NoError(t, sys.Ftruncate(fd, 10000))
	st, err := sys.Fstat(fd)
	require.NoError(t, err)
	require.EqualValues(t, 10000, st.Size)
	require.EqualValues(t, sys.PageSize(), st.Blksize)

	require.NoError(t, sys.AddSeals(fd, sys.F_SEAL_SHRINK|sys.F_SEAL_GROW|sys.F_SEAL_SEAL))
	seals, err := sys.GetSeals(fd)
	require.NoError(t, err)
	// MFD_NOEXEC_SEAL adds F_SEAL_EXEC.
	require.Equal(t, sys.F_SEAL_SHRINK|sys.F_SEAL_GROW|sys.F_SEAL_SEAL|sys.F_SEAL_EXEC, seals)
	require.ErrorIs(t, sys.Ftruncate(fd, 0), sys.EPERM)
	require.ErrorIs(t, sys.AddSeals(fd, sys.F_SEAL_WRITE), sys.EPERM)

	link, err := sys.FdPath(fd)
	require.NoError(t, err)
	require.Equal(t, "/memfd:parallax-"+t.Name()+" (deleted)", link)

	ro, err := sys.ReopenReadOnly(fd)
	require.NoError(t, err)
	defer sys.Close(ro)
	_, err = sys.Mmap(ro, 0, 10000, 0, sys.PROT_READ|sys.PROT_WRITE, sys.MAP_SHARED)
	require.ErrorIs(t, err, sys.EACCES)
	b, err := sys.Mmap(ro, 0, 10000, 0, sys.PROT_READ, sys.MAP_SHARED)
	require.NoError(t, err)
	require.Len(t, b, 3*sys.PageSize(), "length rounded up to the page size")
	require.ErrorIs(t, sys.Mprotect(b, sys.PROT_READ|sys.PROT_WRITE), sys.EACCES)
	require.NoError(t, sys.Madvise(b, sys.MADV_WILLNEED))
	require.NoError(t, sys.Munmap(b[:10]), "a resliced mapping still unmaps whole")

	_, err = sys.GetSeals(-1)
	require.ErrorIs(t, err, sys.EBADF)
	_, err = sys.Mmap(fd, 0, 0, 0, sys.PROT_READ, sys.MAP_SHARED)
	require.ErrorIs(t, err, sys.EINVAL)
}

// TestMmapHugetlbRounding maps 1 MiB of a 2 MiB hugetlb memfd: the mapping
// comes back 2 MiB long and unmaps cleanly (an unrounded munmap would fail
// with EINVAL and leak the mapping).
func TestMmapHugetlbRounding(t *testing.T) {
	t.Parallel()
	testutil.MustHaveHugepages(t, 1)
	fd := newMemfd(t, sys.MFD_CLOEXEC|sys.MFD_ALLOW_SEALING|sys.MFD_HUGETLB|sys.MFD_HUGE_2MB)
	require.ErrorIs(t, sys.Ftruncate(fd, 1<<20), sys.EINVAL, "hugetlb sizes are multiples of the page size")
	require.NoError(t, sys.Ftruncate(fd, 2<<20))
	st, err := sys.Fstat(fd)
	require.NoError(t, err)
	require.EqualValues(t, 2<<20, st.Blksize)
	b, err := sys.Mmap(fd, 0, 1<<20, 2<<20, sys.PROT_READ|sys.PROT_WRITE, sys.MAP_SHARED|sys.MAP_POPULATE)
	require.NoError(t, err)
	require.Len(t, b, 2<<20)
	b[len(b)-1] = 1
	require.NoError(t, sys.Munmap(b[:1<<20]))
}

func TestMmapAnonymous(t *testing.T) {
	t.Parallel()
	b, err := sys.Mmap(-1, 0, 100, 0, sys.PROT_READ|sys.PROT_WRITE, sys.MAP_PRIVATE|sys.MAP_ANONYMOUS)
	require.NoError(t, err)
	require.Len(t, b, sys.PageSize())
	b[99] = 1
	require.NoError(t, sys.Munmap(b))
}
