package main

import (
	"flag"
	"fmt"

	"github.com/parallax-ipc/parallax"
	"github.com/parallax-ipc/parallax/internal/wire"
)

func init() {
	register(&command{name: "version", short: "print the Parallax and protocol versions", usage: "",
		flags: noFlags(func(e *env, _ *flag.FlagSet, _ *globals) int {
			fmt.Fprintf(e.stdout, "parallax %s (control protocol v%d)\n", parallax.Version, wire.Version)
			return exitOK
		})})
}
