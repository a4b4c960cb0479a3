//go:build linux

package sys

import (
	"errors"
	"fmt"
	"os"
	"strconv"

	"golang.org/x/sys/unix"
)

// ReniceProcess sets the nice value of every thread of this process (on
// Linux nice is per thread; threads the Go runtime creates later inherit it
// from the thread that creates them). A negative value needs CAP_SYS_NICE;
// without it the error wraps EACCES or EPERM.
func ReniceProcess(nice int) error {
	ents, err := os.ReadDir("/proc/self/task")
	if err != nil {
		return fmt.Errorf("renice: %w", err)
	}
	for _, e := range ents {
		tid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		if err := unix.Setpriority(unix.PRIO_PROCESS, tid, nice); err != nil && !errors.Is(err, unix.ESRCH) {
			return fmt.Errorf("renice thread %d to %d: %w", tid, nice, err)
		}
	}
	return nil
}
