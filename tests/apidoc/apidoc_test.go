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
// packages. discovery is not among them yet: its control-connection API
// (Client.Request, Conn, ServerConn, PushHandler) speaks internal/wire
// messages by design and is to move to an internal package (issue 14).
// Applications discover services through package services instead.
var public = []string{
	"github.com/parallax-ipc/parallax",
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
}

// internalName matches a path into an internal package or a qualifier of
// one of the module's internal packages (wire.X, clientrt.X, ...).
var internalName = regexp.MustCompile(`internal/|\b(wire|clientrt|core|owner|ownedpub|ownedsub|rpclink|testutil|routertest|sys|buildinfo)\.[A-Za-z_]`)

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
