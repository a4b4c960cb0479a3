package main

func init() {
	register(&command{name: "pools", short: "list the router's memory: per publisher data segment (owned model: chunks, in use, loans, high water, pages) and pools",
		usage: "[-json]", flags: introspectCommand("pools", wantPools|wantPublishers, poolsTable)})
}
