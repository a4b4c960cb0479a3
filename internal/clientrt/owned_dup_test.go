package clientrt

import (
	"os"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/parallax-ipc/parallax"
	"github.com/parallax-ipc/parallax/dataseg"
	"github.com/parallax-ipc/parallax/internal/sys"
)

// TestDuplicateReadOnlyGrant: the reply to a GetDataSegment and the push
// of the same segment can cross; the second copy of the same file is
// closed without an error, while a different file under a mapped index is
// still a protocol error. Before, both were refused as "granted twice".
func TestDuplicateReadOnlyGrant(t *testing.T) {
	d := dataseg.Desc{PubID: 3, ChunkSize: 64, Count: 4, PageSize: uint32(os.Getpagesize())}
	rt := ownedRuntime()
	ro := newPubSegments(3, true) // as if a local subscriber of publisher 3 were connected
	rt.owned.ro = map[uint32]*PubSegments{3: ro}
	defer func() {
		for _, m := range ro.maps {
			if m != nil {
				m.Close()
			}
		}
	}()
	f, wd := grantFile(t, d)
	wd.ReadOnly = true
	dup, err := sys.DupFile(f)
	require.NoError(t, err)

	_, err = rt.addDataSegment(wd, f, false)
	require.NoError(t, err)
	_, err = rt.addDataSegment(wd, dup, false)
	require.ErrorIs(t, err, errAlreadyMapped, "the same segment granted again")
	_, err = dup.Stat()
	require.ErrorIs(t, err, os.ErrClosed, "the redundant fd is closed")
	_, nro, _ := rt.OwnedMappings()
	require.Equal(t, 1, nro)

	other, owd := grantFile(t, d)
	owd.ReadOnly = true
	_, err = rt.addDataSegment(owd, other, false)
	require.ErrorIs(t, err, parallax.ErrProtocol, "another file under a mapped index")
	require.NotErrorIs(t, err, errAlreadyMapped)
}
