package dataseg

import (
	"testing"

	"github.com/parallax-ipc/parallax/internal/testutil"
)

func TestMain(m *testing.M) { testutil.Main(m) }

// mustFormat formats a segment over fresh heap memory.
func mustFormat(t testing.TB, d Desc) (*Segment, []byte) {
	t.Helper()
	mem := make([]byte, Size(d))
	s, err := Format(mem, d)
	if err != nil {
		t.Fatalf("Format(%+v): %v", d, err)
	}
	return s, mem
}
