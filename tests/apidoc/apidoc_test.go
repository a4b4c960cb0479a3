// Package apidoc checks that the public packages' documentation names no
// internal type: what `go doc -all` shows is what a user can name.
package apidoc

import (
	"os/exec"
	"regexp"
	"strings"
	"testing"
)

// public are the packages whose exported API must not mention internal
// packages. discovery keeps only socket-path resolution public; its
// control connection (which speaks internal/wire) is internal/discovery.
var public = []string{
	"github.com/parallax-ipc/parallax",
	"github.com/parallax-ipc/parallax/discovery",
	"github.com/parallax-ipc/parallax/publisher",
	"github.com/parallax-ipc/parallax/subscriber",
	"github.com/parallax-ipc/parallax/roudi",
	"github.com/parallax-ipc/parallax/gateway",
	"github.com/parallax-ipc/parallax/buffer",
	"github.com/parallax-ipc/parallax/pipeline",
	"github.com/parallax-ipc/parallax/segment",
	"github.com/parallax-ipc/parallax/services",
	"github.com/parallax-ipc/parallax/rpc",
	"github.com/parallax-ipc/parallax/event",
	"github.com/parallax-ipc/parallax/waitset",
	"github.com/parallax-ipc/parallax/dataseg",
	"github.com/parallax-ipc/parallax/ringbuf",
	"github.com/parallax-ipc/parallax/mempool",
	"github.com/parallax-ipc/parallax/hugepages",
	"github.com/parallax-ipc/parallax/plugin",
	"github.com/parallax-ipc/parallax/pipeline/elements",
}

// internalName matches a path into an internal package or a qualifier of
// one of the module's internal packages (wire.X, clientrt.X, ...).
// internal/discovery shares its package name with the public discovery, so
// its names are listed.
var internalName = regexp.MustCompile(`internal/|\b(wire|clientrt|core|owner|ownedpub|ownedsub|rpclink|testutil|routertest|sys|buildinfo)\.[A-Za-z_]|\bdiscovery\.(Client|Conn|ServerConn|Dial|DialOptions|PushHandler|QueueOptions|Cred|Listen|PeerCred|PeerPidfd)\b`)

func TestGoDocNamesNoInternalType(t *testing.T) {
	gobin, err := exec.LookPath("go")
	if err != nil {
		t.Skip("go doc needs the go command, which is not in PATH")
	}
	for _, pkg := range public {
		t.Run(pkg[strings.LastIndex(pkg, "/")+1:], func(t *testing.T) {
			t.Parallel()
			out, err := exec.Command(gobin, "doc", "-all", pkg).CombinedOutput()
			if err != nil {
				t.Fatalf("go doc -all %s: %v\n%s", pkg, err, out)
			}
			for i, line := range strings.Split(string(out), "\n") {
				if internalName.MatchString(line) {
					t.Errorf("go doc -all %s line %d names an internal type: %s", pkg, i+1, strings.TrimSpace(line))
				}
			}
		})
	}
}
