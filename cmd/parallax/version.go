package main

import (
	"flag"
	"fmt"

	"github.com/parallax-ipc/parallax"
	"github.com/parallax-ipc/parallax/internal/wire"
)

func init() {
	register(&command{name: "version", short: "print the Parallax and protocol versions", usage: "",
		run: func(e *env, fs *flag.FlagSet, _ *globals, args []string) int {
			if ok, code := parseFlags(fs, args); !ok {
				return code
			}
			fmt.Fprintf(e.stdout, "parallax %s (control protocol v%d)\n", parallax.Version, wire.Version)
			return exitOK
		}})
}
