package main

func init() {
	register(&command{name: "clients", short: "list the client processes and their connections (capacity, policy, traffic)",
		usage: "[-json]", flags: introspectCommand("clients", wantProcesses|wantConnections, clientsTable)})
	register(&command{name: "connections", short: "list the publisher-subscriber connections: capacity, policy and the traffic their publishers reported",
		usage: "[-json]", flags: introspectCommand("connections", wantConnections, connectionsTable)})
}
