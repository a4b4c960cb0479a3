package waitset_test

import (
	"testing"

	"github.com/parallax-ipc/parallax/internal/testutil"
)

func TestMain(m *testing.M) { testutil.Main(m) }
