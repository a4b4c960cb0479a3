package waitset_test

import (
	"context"
	"os"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/parallax-ipc/parallax/waitset"
)

// Close while the fd helper is finishing a poll round (an fd became
// readable just before) returns: the helper must not go back to wait for
// a round nobody will start. Each iteration makes an fd readable and
// closes the set at once, with a Wait running, so the helper's round and
// Close race; a Close that does not return within the deadline is the
// hang.
func TestCloseRacesFdRound(t *testing.T) {
	t.Parallel()
	r, w, err := os.Pipe()
	require.NoError(t, err)
	defer r.Close()
	defer w.Close()
	for i := range 2000 {
		ws, err := waitset.New(waitset.Options{})
		require.NoError(t, err)
		require.NoError(t, ws.AddFd(int(r.Fd()), 1))
		waited := make(chan struct{})
		go func() {
			defer close(waited)
			_, _ = ws.Wait(context.Background())
		}()
		_, err = w.Write([]byte{1})
		require.NoError(t, err)
		closed := make(chan error, 1)
		go func() { closed <- ws.Close() }()
		select {
		case err := <-closed:
			require.NoError(t, err)
		case <-time.After(10 * time.Second):
			t.Fatalf("iteration %d: Close hangs while the fd helper ends a round", i)
		}
		<-waited
		_, err = r.Read(make([]byte, 16))
		require.NoError(t, err)
	}
}
