//go:build !linux

package procmon

import (
	"fmt"

	"github.com/parallax-ipc/parallax"
)

// CheckEBPF reports whether this process can run the eBPF monitor; off
// Linux it never can.
func CheckEBPF() error {
	return fmt.Errorf("ebpf process monitor: %w: needs Linux", parallax.ErrNotSupported)
}

func newEBPF(func(int32, uint64)) (Monitor, error) { return nil, CheckEBPF() }
