package roudi

import (
	"os"
	"testing"

	"github.com/parallax-ipc/parallax/internal/testutil"
)

func TestMain(m *testing.M) {
	testutil.ChildMain(serverChildRoles) // server_monitor_test.go
	// Opening any file initialises the runtime's netpoller (an epoll fd
	// and an eventfd). Do it before testutil.Main takes its first fd count,
	// or the runtime's own fds read as a leak.
	_, _ = os.ReadFile("/proc/self/stat")
	testutil.Main(m)
}
