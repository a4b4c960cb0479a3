package roudi

import (
	"bytes"
	"testing"

	"github.com/stretchr/testify/require"
)

func TestMainMonitorFlag(t *testing.T) {
	t.Parallel()
	var stderr bytes.Buffer
	require.Equal(t, 2, Main([]string{"-monitor", "kprobe"}, &stderr), "a bad -monitor is a usage error")
	require.Contains(t, stderr.String(), `-monitor: process monitor mode "kprobe"`)
}
