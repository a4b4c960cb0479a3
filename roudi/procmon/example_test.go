package procmon_test

import (
	"fmt"
	"log"
	"os"

	"github.com/parallax-ipc/parallax/roudi/procmon"
)

func ExampleParseMode() {
	m, err := procmon.ParseMode("EBPF")
	fmt.Println(m, err)
	_, err = procmon.ParseMode("kprobe")
	fmt.Println(err)
	// Output:
	// ebpf <nil>
	// process monitor mode "kprobe": invalid process monitor mode: want auto, ebpf or pidfd
}

// The router watches each client's pid and turns exits into reclamation.
func ExampleNew() {
	m, err := procmon.New(procmon.ModeAuto)
	if err != nil {
		log.Fatal(err)
	}
	defer m.Close()
	if r := procmon.FallbackReason(m); r != "" {
		log.Printf("process monitor: %s (%s)", m.Kind(), r)
	}
	var pid int32 = 4242 // a client's pid, from SO_PEERCRED
	var pidfd *os.File   // its pidfd from SO_PEERPIDFD, or nil
	if err := m.Watch(pid, pidfd); err != nil {
		log.Fatal(err)
	}
	for ex := range m.Events() {
		fmt.Printf("process %d exited (seen by %s)\n", ex.PID, ex.Source)
	}
}
