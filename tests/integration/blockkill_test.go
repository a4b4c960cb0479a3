//go:build integration

package integration

import (
	"context"
	"strconv"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/parallax-ipc/parallax/publisher"
)

// TestOwnedBlockedPublishSubscriberKilled: a publisher (this process)
// with two block-producer subscriber processes, one taking everything and
// one that stops taking, blocks in Publish on the second once its queue is
// full (or it holds its bound). That subscriber is SIGKILLed while
// Publish waits on it: Publish returns nil (the connection went away, as
// if it had been removed before the call), the other subscriber gets every
// sample, and Stats count the removed connection and the chunks taken
// back from it. Both ways of blocking: the data ring full (the victim
// takes nothing) and the victim at its bound (it holds max-held samples and
// its queue is full, so Publish waits for a return).
func TestOwnedBlockedPublishSubscriberKilled(t *testing.T) {
	t.Parallel()
	const qcap, maxHeld = 8, 16 // the router's default_max_held is 16
	for _, tc := range []struct {
		name   string
		victim []string
		held   int // samples the victim takes and holds
	}{
		{"queue-full", []string{"-gate"}, 0},
		{"at-bound", []string{"-n=" + strconv.Itoa(maxHeld), "-keep=" + strconv.Itoa(maxHeld)}, maxHeld},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			r := startRouterWith(t, ownedConfig)
			ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
			defer cancel()
			topic := "blockkill-" + tc.name
			blocksAt := qcap + tc.held + 1 // the publish that cannot reach the victim
			n := blocksAt + 40

			pub, err := publisher.New(ctx, topic, publisher.Options{Socket: r.Socket, MaxPayload: 256, BlockTimeout: 2 * time.Minute})
			require.NoError(t, err)
			defer pub.Close()

			// The other subscriber connects first, so Publish delivers to
			// it before it reaches the victim.
			other := spawn(t, "other subscriber", "sub", sockArg(r), "-topic="+topic, "-n="+strconv.Itoa(n), "-qcap=4", "-policy=block", "-exact")
			other.expect("ready")
			require.NoError(t, pub.WaitForSubscribers(ctx, 1))
			victim := spawn(t, "victim subscriber", "sub", append([]string{sockArg(r), "-topic=" + topic, "-qcap=" + strconv.Itoa(qcap), "-policy=block"}, tc.victim...)...)
			victim.expect("ready")
			require.NoError(t, pub.WaitForSubscribers(ctx, 2))

			errs := make(chan error, n)
			go func() {
				for i := 1; i <= n; i++ {
					c, err := pub.Loan(200)
					if err != nil {
						errs <- err
						return
					}
					fill(c.Bytes(), uint64(i))
					errs <- pub.Publish(c)
				}
			}()
			if tc.held > 0 {
				require.Equal(t, []string{strconv.Itoa(tc.held)}, victim.expect("holding "))
			}

			// Publish number blocksAt has reached the other subscriber and
			// not the victim: it waits on the victim (Stats takes the
			// engine's lock, which a Publish releases only while it waits).
			deadline := time.Now().Add(time.Minute)
			tick := time.NewTicker(time.Millisecond)
			defer tick.Stop()
			done := 0 // publishes returned
			for {
				st := pub.Stats()
				if st.Published == uint64(blocksAt-1) && st.Delivered == uint64(2*(blocksAt-1)+1) {
					break
				}
				require.True(t, time.Now().Before(deadline), "Publish %d never blocked on the victim: %+v", blocksAt, st)
				select {
				case err := <-errs:
					require.NoError(t, err, "a publish before the victim was killed")
					done++
				case <-tick.C:
				}
			}
			require.NoError(t, victim.cmd.Process.Signal(syscall.SIGKILL)) // our own child, by PID
			require.Error(t, victim.waitErr(), "the victim was killed")

			for ; done < n; done++ {
				select {
				case err := <-errs:
					require.NoError(t, err, "a publish (the blocked one is %d of %d)", blocksAt, n)
				case <-ctx.Done():
					t.Fatalf("publishes did not finish after the victim was killed: %+v", pub.Stats())
				}
			}
			rep := parseSubReport(t, other.wait())
			require.Equal(t, uint64(n), rep.Total, "the other subscriber got every sample")
			require.Zero(t, rep.Dropped)

			// Both connections end (the other subscriber closed after its
			// n samples): each counted once, neither as corrupt.
			var st publisher.Stats
			for {
				st = pub.Stats()
				if st.Subscribers == 0 && st.Removed == 2 {
					break
				}
				require.True(t, time.Now().Before(deadline), "connections not removed: %+v", st)
				<-tick.C
			}
			require.Equal(t, uint64(n), st.Published)
			require.Zero(t, st.CorruptConnections, "a dead subscriber is not a corrupt connection: %+v", st)
			require.GreaterOrEqual(t, st.Memory.Reclaimed, uint64(qcap+tc.held), "chunks taken back from the victim: %+v", st)
			require.Equal(t, st.Memory.Chunks, st.Memory.Free, "every chunk back: %+v", st)
		})
	}
}
