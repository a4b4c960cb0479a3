package hugepages

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strconv"
	"syscall"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/parallax-ipc/parallax"
	"github.com/parallax-ipc/parallax/internal/testutil"
)

func TestMain(m *testing.M) {
	testutil.Main(m)
}

// fakePool describes one pool of a fake sysfs tree.
type fakePool struct {
	kb                                     int
	total, free, resv, surplus, overcommit int
}

// fakeHost writes a fake /sys/kernel/mm/hugepages tree into a temporary
// directory and returns a Host reading it.
func fakeHost(t *testing.T, pools ...fakePool) Host {
	t.Helper()
	root := t.TempDir()
	for _, p := range pools {
		dir := filepath.Join(root, fmt.Sprintf("hugepages-%dkB", p.kb))
		require.NoError(t, os.Mkdir(dir, 0o755))
		for name, v := range map[string]int{
			"nr_hugepages": p.total, "free_hugepages": p.free, "resv_hugepages": p.resv,
			"surplus_hugepages": p.surplus, "nr_overcommit_hugepages": p.overcommit,
			"nr_hugepages_mempolicy": p.total,
		} {
			require.NoError(t, os.WriteFile(filepath.Join(dir, name), []byte(strconv.Itoa(v)+"\n"), 0o644))
		}
	}
	// Noise the parser must ignore.
	require.NoError(t, os.Mkdir(filepath.Join(root, "not-a-pool"), 0o755))
	return Host{Root: root}
}

func TestSizes(t *testing.T) {
	t.Parallel()
	h := fakeHost(t, fakePool{kb: 1048576}, fakePool{kb: 2048})
	sizes, err := h.Sizes()
	require.NoError(t, err)
	require.Equal(t, []int{Size2M, Size1G}, sizes)

	_, err = Host{Root: filepath.Join(t.TempDir(), "missing")}.Sizes()
	require.ErrorIs(t, err, parallax.ErrNotSupported)
}

func TestStat(t *testing.T) {
	t.Parallel()
	h := fakeHost(t, fakePool{kb: 2048, total: 16, free: 12, resv: 3, surplus: 1, overcommit: 4})
	info, err := h.Stat(Size2M)
	require.NoError(t, err)
	require.Equal(t, Info{PageSize: Size2M, Total: 16, Free: 12, Reserved: 3, Surplus: 1, Overcommit: 4}, info)
	require.Equal(t, 12-3+(4-1), info.Available())

	_, err = h.Stat(Size1G)
	require.ErrorIs(t, err, parallax.ErrNotSupported)

	require.NoError(t, os.WriteFile(filepath.Join(h.Dir(Size2M), "free_hugepages"), []byte("garbage"), 0o644))
	_, err = h.Stat(Size2M)
	require.Error(t, err)
	require.NotErrorIs(t, err, parallax.ErrNotSupported)
}

func TestAvailable(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		info Info
		want int
	}{
		{Info{}, 0},
		{Info{Free: 5}, 5},
		{Info{Free: 5, Reserved: 5}, 0},
		{Info{Free: 0, Overcommit: 8, Surplus: 2}, 6},
		{Info{Free: 1, Reserved: 3}, 0},
		{Info{Free: 2, Overcommit: 1, Surplus: 4}, 2},
	} {
		require.Equal(t, tc.want, tc.info.Available(), "%+v", tc.info)
	}
}

func TestDecide(t *testing.T) {
	t.Parallel()
	base := os.Getpagesize()
	h := fakeHost(t,
		fakePool{kb: 2048, total: 8, free: 6, resv: 2},
		fakePool{kb: 1048576, total: 1, free: 1},
	)
	empty := fakeHost(t, fakePool{kb: 2048})
	for _, tc := range []struct {
		name       string
		host       Host
		mode       Mode
		size       int
		wantPage   int
		wantHuge   bool
		wantReason string // substring
	}{
		{"auto/fits", h, Auto, 8 << 20, Size2M, true, ""},
		{"auto/rounds-up-and-fits", h, Auto, 7<<20 + 1, Size2M, true, ""},
		{"auto/too-big", h, Auto, 8<<20 + 1, base, false, "need 5 free 2 MiB hugepages for 8388609 bytes, 4 available"},
		{"auto/empty-pool", empty, Auto, 1, base, false, "free_hugepages"},
		{"never", h, Never, 1 << 20, base, false, "mode never"},
		{"2M/fits", h, Huge2M, 1, Size2M, true, ""},
		{"1G/fits", h, Huge1G, 1 << 30, Size1G, true, ""},
		{"1G/too-big", h, Huge1G, 1<<30 + 1, base, false, "hugepages-1048576kB/free_hugepages"},
		{"1G/no-pool", empty, Huge1G, 1, base, false, "no 1 GiB hugepage pool"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			d := tc.host.Decide(tc.mode, tc.size)
			require.Equal(t, tc.wantPage, d.PageSize)
			require.Equal(t, tc.wantHuge, d.UseHuge)
			if tc.wantHuge {
				require.Empty(t, d.Reason)
			} else {
				require.Contains(t, d.Reason, tc.wantReason)
			}
		})
	}
}

func TestModeText(t *testing.T) {
	t.Parallel()
	for _, m := range []Mode{Auto, Never, Huge2M, Huge1G} {
		b, err := m.MarshalText()
		require.NoError(t, err)
		var got Mode
		require.NoError(t, got.UnmarshalText(b))
		require.Equal(t, m, got)
	}
	var m Mode
	require.Error(t, m.UnmarshalText([]byte("4K")))
	_, err := Mode(9).MarshalText()
	require.Error(t, err)
	require.Equal(t, "Mode(9)", Mode(9).String())
}

func TestReserveFake(t *testing.T) {
	t.Parallel()
	h := fakeHost(t, fakePool{kb: 2048, total: 4})
	got, err := h.Reserve(Size2M, 10)
	require.NoError(t, err)
	require.Equal(t, 10, got)
	info, err := h.Stat(Size2M)
	require.NoError(t, err)
	require.Equal(t, 10, info.Total)

	_, err = h.Reserve(Size1G, 1)
	require.ErrorIs(t, err, parallax.ErrNotSupported)
	_, err = h.Reserve(Size2M, -1)
	require.Error(t, err)
}

func TestClassifyPermission(t *testing.T) {
	t.Parallel()
	err := classify(&fs.PathError{Op: "open", Path: "/sys/x", Err: syscall.EACCES})
	require.ErrorIs(t, err, parallax.ErrPermissionDenied)
	require.ErrorIs(t, err, os.ErrPermission)
	require.ErrorIs(t, err, syscall.EACCES)

	other := errors.New("other")
	require.Equal(t, other, classify(other))
	require.NoError(t, classify(nil))
}

// TestReserveReal grows the real 2 MiB pool by two pages, reads it back and
// restores the old size.
func TestReserveReal(t *testing.T) {
	testutil.RequiresRoot(t)
	old, err := Stat(Size2M)
	if errors.Is(err, parallax.ErrNotSupported) && !testutil.Strict() {
		t.Skipf("host has no 2 MiB hugepage pool: %v", err)
	}
	require.NoError(t, err)
	t.Cleanup(func() {
		got, err := Reserve(Size2M, old.Total)
		require.NoError(t, err)
		require.Equal(t, old.Total, got, "restore nr_hugepages")
	})
	got, err := Reserve(Size2M, old.Total+2)
	require.NoError(t, err)
	// The kernel may fall short on fragmented memory, never overshoot.
	require.LessOrEqual(t, got, old.Total+2)
	require.GreaterOrEqual(t, got, old.Total)
	if got < old.Total+2 {
		t.Logf("kernel reserved %d of %d pages", got, old.Total+2)
	}
	now, err := Stat(Size2M)
	require.NoError(t, err)
	require.Equal(t, got, now.Total)
}

func TestReserveRealUnprivileged(t *testing.T) {
	if testutil.IsRoot() {
		t.Skip("test covers the unprivileged path; running as root")
	}
	old, err := Stat(Size2M)
	if err != nil {
		t.Skipf("host has no 2 MiB hugepage pool: %v", err)
	}
	_, err = Reserve(Size2M, old.Total+1)
	require.ErrorIs(t, err, parallax.ErrPermissionDenied)
	require.ErrorIs(t, err, os.ErrPermission)
}
