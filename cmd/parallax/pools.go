package main

func init() {
	register(&command{name: "pools", short: "list the router's memory pools (size class, capacity, use, hugepages)",
		usage: "[-json]", flags: introspectCommand("pools", wantPools, poolsTable)})
}
