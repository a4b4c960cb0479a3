// Command parallax-roudi is the Parallax router daemon: it owns a domain's
// shared memory, brokers topic discovery, connects publishers to
// subscribers and reclaims what dead processes held.
//
//	parallax-roudi [-config file.toml] [-domain name] [-socket path] [-log-level info]
//
// Without -config it runs the embedded default configuration
// (parallax-roudi -print-default-config shows it); -check-config validates
// a configuration without starting, -version prints the build.
// Exit codes: 0 after SIGINT or SIGTERM, 1 on errors, 2 on usage errors,
// 3 when another router already serves the domain (the message names its
// pid and socket).
package main

import (
	"os"

	"github.com/parallax-ipc/parallax/roudi"
)

func main() {
	os.Exit(roudi.Main(os.Args[1:], os.Stderr))
}
