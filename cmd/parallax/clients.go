package main

func init() {
	register(&command{name: "clients", short: "list the client processes and their connections (capacity, policy)",
		usage: "[-json]", flags: introspectCommand("clients", wantProcesses|wantConnections, clientsTable)})
}
