package main

import "io"

func init() {
	const short = "list publisher memory: one row per publisher data segment (chunks, in use, loans, history, outstanding, high water, pages)"
	register(&command{name: "pools", short: short,
		usage: "[-json]", flags: introspectCommand("pools", wantPublishers, poolsTable)})
	register(&command{name: "memory", short: "the same as pools",
		usage: "[-json]", flags: introspectCommand("memory", wantPublishers, poolsTable)})
}

// poolsTable shows publisher memory (publishersTable), with its header
// even when there is no publisher.
func poolsTable(w io.Writer, v *view) { publishersTable(w, v) }
