// Command parallax is the Parallax command-line tool: pipelines (launch,
// inspect, plugins), introspection of a running router (topics, clients,
// pools, gateways, top), debugging (pub, echo), benchmarks and the NATS
// gateway.
//
//	parallax <command> [flags] [args]
//	parallax help [command]
//
// Every command that talks to a router accepts -domain and -socket.
package main

import "os"

func main() { os.Exit(run(os.Args[1:], os.Stdin, os.Stdout, os.Stderr)) }
