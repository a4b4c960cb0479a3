package background

import (
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// Wait returns once the last piece of work is done, and reports work that
// outlives its bound.
func TestWait(t *testing.T) {
	require.True(t, Wait(time.Millisecond), "nothing runs")
	Start()
	Start()
	require.Equal(t, 2, Running())
	require.False(t, Wait(time.Millisecond), "two pieces run")
	done := make(chan bool)
	go func() { done <- Wait(time.Minute) }()
	Done()
	select {
	case <-done:
		t.Fatal("Wait returned while one piece runs")
	case <-time.After(10 * time.Millisecond):
	}
	Done()
	require.True(t, <-done)
	require.Zero(t, Running())
	require.Panics(t, Done)
}
