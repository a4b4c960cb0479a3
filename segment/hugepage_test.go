package segment_test

import (
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/parallax-ipc/parallax"
	"github.com/parallax-ipc/parallax/hugepages"
	"github.com/parallax-ipc/parallax/internal/sys"
	"github.com/parallax-ipc/parallax/internal/testutil"
	"github.com/parallax-ipc/parallax/segment"
)

func TestHugepage(t *testing.T) {
	t.Parallel()
	testutil.MustHaveHugepages(t, 2)
	const size = 3 << 20 // rounds up to two 2 MiB pages
	m, err := segment.NewHugepage(t.Name(), size, segment.HugepageOptions{Mode: hugepages.Huge2M, Require: true})
	require.NoError(t, err)
	defer m.Close()
	require.Equal(t, segment.KindHugepage, m.Kind())
	require.Equal(t, hugepages.Size2M, m.PageSize())
	require.Equal(t, 4<<20, m.Len())
	require.Empty(t, m.FallbackReason())
	seals, err := m.Seals()
	require.NoError(t, err)
	require.Equal(t, segment.SealMask, seals&segment.SealMask)
	st, err := sys.Fstat(int(m.File().Fd()))
	require.NoError(t, err)
	require.EqualValues(t, hugepages.Size2M, st.Blksize)
	fill(m.Bytes()[:4096])

	// A receiver learns the page size from the fd alone.
	ro, err := m.ReadOnlyFile()
	require.NoError(t, err)
	defer ro.Close()
	sub, err := segment.Open(ro, segment.OpenOptions{ReadOnly: true, ExpectedSize: 4 << 20, RequireSeals: true})
	require.NoError(t, err)
	defer sub.Close()
	require.Equal(t, segment.KindHugepage, sub.Kind())
	require.Equal(t, hugepages.Size2M, sub.PageSize())
	require.Equal(t, m.Bytes()[:4096], sub.Bytes()[:4096])

	// And a child process maps and writes it.
	require.NoError(t, testutil.ChildCommand(t, "mapwrite", []*os.File{m.File()}, strconv.Itoa(4<<20)).Run())
	require.Equal(t, "written by child", string(m.Bytes()[4096:4096+16]))
	require.Equal(t, byte(0xAB), m.Bytes()[m.Len()-1])
}

// realAvailable2M returns the available 2 MiB pages of the real pool, or
// skips t when the host has none.
func realAvailable2M(t *testing.T) int {
	t.Helper()
	info, err := hugepages.Stat(hugepages.Size2M)
	if err != nil {
		t.Skipf("host has no 2 MiB hugepage pool: %v", err)
	}
	return info.Available()
}

// fallbackOpts is cheap: a fallen-back segment is not prefaulted.
func requireFallback(t *testing.T, size int, opts segment.HugepageOptions, wantReason string) {
	t.Helper()
	opts.NoPrefault = true
	m, err := segment.NewHugepage(t.Name(), size, opts)
	require.NoError(t, err)
	defer m.Close()
	require.Equal(t, segment.KindMemfd, m.Kind())
	require.Equal(t, os.Getpagesize(), m.PageSize())
	require.Equal(t, size, m.Len())
	require.Contains(t, m.FallbackReason(), wantReason)
	t.Logf("fallback reason: %s", m.FallbackReason())

	opts.Require = true
	_, err = segment.NewHugepage(t.Name(), size, opts)
	require.ErrorIs(t, err, parallax.ErrNotSupported)
}

func TestHugepageFallback(t *testing.T) {
	t.Parallel()
	t.Run("1G-none-free", func(t *testing.T) {
		t.Parallel()
		if testutil.Free1GHugepages() > 0 {
			t.Skip("1 GiB hugepages are free on this host; the fallback cannot be provoked")
		}
		requireFallback(t, 4096, segment.HugepageOptions{Mode: hugepages.Huge1G}, "1 GiB")
	})
	t.Run("more-2M-than-free", func(t *testing.T) {
		t.Parallel()
		// A margin covers pages freed by concurrent tests meanwhile.
		size := (realAvailable2M(t) + 16) * hugepages.Size2M
		requireFallback(t, size, segment.HugepageOptions{}, "free_hugepages")
	})
	t.Run("mmap-ENOMEM", func(t *testing.T) {
		t.Parallel()
		// A fake sysfs claims plenty of free pages, so the decision says
		// yes and the real kernel refuses at mmap.
		avail := realAvailable2M(t)
		root := t.TempDir()
		dir := filepath.Join(root, "hugepages-2048kB")
		require.NoError(t, os.Mkdir(dir, 0o755))
		for name, v := range map[string]int{"nr_hugepages": 1 << 20, "free_hugepages": 1 << 20,
			"resv_hugepages": 0, "surplus_hugepages": 0, "nr_overcommit_hugepages": 0} {
			require.NoError(t, os.WriteFile(filepath.Join(dir, name), []byte(fmt.Sprint(v)), 0o644))
		}
		size := (avail + 16) * hugepages.Size2M
		opts := segment.HugepageOptions{Host: hugepages.Host{Root: root}}
		requireFallback(t, size, opts, "cannot allocate memory")

		opts.Require, opts.NoPrefault = true, true
		_, err := segment.NewHugepage(t.Name(), size, opts)
		require.ErrorIs(t, err, sys.ENOMEM)
	})
	t.Run("never", func(t *testing.T) {
		t.Parallel()
		requireFallback(t, 4096, segment.HugepageOptions{Mode: hugepages.Never}, "mode never")
	})
}
