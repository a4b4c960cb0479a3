package waitset_test

import (
	"context"
	"fmt"
	"os"
	"time"

	"github.com/parallax-ipc/parallax/waitset"
)

// A wait set over a pipe and a deadline: the pipe is readable first.
func Example() {
	r, w, _ := os.Pipe()
	defer r.Close()
	defer w.Close()
	rc, _ := r.SyscallConn()
	var fd int
	_ = rc.Control(func(u uintptr) { fd = int(u) })

	ws, _ := waitset.New(waitset.Options{})
	defer ws.Close()
	const pipeKey, timeoutKey = 1, 2
	_ = ws.AddFd(fd, pipeKey)
	_ = ws.AddDeadline(time.Now().Add(time.Hour), timeoutKey)

	_, _ = w.Write([]byte("hello"))
	keys, _ := ws.Wait(context.Background())
	for _, k := range keys {
		if k == pipeKey {
			b := make([]byte, 16)
			n, _ := r.Read(b)
			fmt.Println("pipe:", string(b[:n]))
		}
	}
	// Output: pipe: hello
}
