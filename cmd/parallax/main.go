// Command parallax is the Parallax command-line tool: pipelines (launch,
// inspect, plugins), introspection of a running router (topics, clients,
// connections, pools (alias memory: publisher memory), gateways, top), debugging (pub, echo), benchmarks and the NATS
// gateway.
//
//	parallax [-domain name] [-socket path] <command> [flags] [args]
//	parallax help [command]
//
// The global flags -domain and -socket select the router; every command
// accepts them before its name or among its own flags (where they win).
// `parallax help <command>` lists all of a command's flags.
package main

import "os"

func main() { os.Exit(run(os.Args[1:], os.Stdin, os.Stdout, os.Stderr)) }
