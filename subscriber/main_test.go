package subscriber_test

import (
	"testing"

	"github.com/parallax-ipc/parallax/internal/testutil"
)

func TestMain(m *testing.M) {
	testutil.ChildMain(map[string]func([]string) int{"orphanpub": orphanPubChild, "closer": closerChild, "steppub": stepPubChild, "growpub": growPubChild})
	testutil.Main(m)
}
