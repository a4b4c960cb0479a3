//go:build linux

package procmon

import (
	"fmt"
	"sync"
	"syscall"
)

// initPidNSIno is the inode number of the initial pid namespace
// (PROC_PID_INIT_INO, fixed since Linux 3.8).
const initPidNSIno = 0xEFFFFFFC

// pidNS identifies a pid namespace the way bpf_get_ns_current_pid_tgid
// wants it: the kernel's dev_t of nsfs and the namespace's inode number.
type pidNS struct {
	dev, ino uint64
}

// ownPidNS returns this process's pid namespace, or nil when it is the
// initial one (whose pids bpf_get_current_pid_tgid reports already). A
// process cannot change its own pid namespace, so it is looked up once.
var ownPidNS = sync.OnceValues(func() (*pidNS, error) {
	var st syscall.Stat_t
	if err := syscall.Stat("/proc/self/ns/pid", &st); err != nil {
		return nil, fmt.Errorf("stat own pid namespace: %w", err)
	}
	if st.Ino == initPidNSIno {
		return nil, nil
	}
	return &pidNS{dev: kernelDev(uint64(st.Dev)), ino: st.Ino}, nil
})

// kernelDev converts a stat st_dev (the userspace encoding) to the
// kernel's internal dev_t (major << 20 | minor), which the helper compares.
func kernelDev(dev uint64) uint64 {
	major := (dev>>8)&0xfff | (dev>>32)&^uint64(0xfff)
	minor := dev&0xff | (dev>>12)&^uint64(0xff)
	return major<<20 | minor
}
