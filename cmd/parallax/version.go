package main

import (
	"flag"
	"fmt"

	"github.com/parallax-ipc/parallax"
	"github.com/parallax-ipc/parallax/internal/buildinfo"
	"github.com/parallax-ipc/parallax/internal/wire"
)

func init() {
	register(&command{name: "version", short: "print the Parallax and protocol versions, the module version and commit", usage: "",
		flags: noFlags(func(e *env, _ *flag.FlagSet, _ *globals) int {
			fmt.Fprintf(e.stdout, "parallax %s (control protocol v%d)\n%s\n", parallax.Version, wire.Version, buildinfo.Read())
			return exitOK
		})})
}
