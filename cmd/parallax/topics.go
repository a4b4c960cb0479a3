package main

func init() {
	register(&command{name: "topics", short: "list the router's topics with message counters, rates and queue depth",
		usage: "[-json]", run: introspectCommand("topics", wantTopics, topicsTable)})
}
