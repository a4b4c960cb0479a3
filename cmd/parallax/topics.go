package main

func init() {
	register(&command{name: "topics", short: "list the router's topics with message counters, rates and queue depth",
		usage: "[-json]", flags: introspectCommand("topics", wantTopics|wantPublishers, topicsTable)})
}
