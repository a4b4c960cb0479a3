package main

func init() {
	register(&command{name: "topics", short: "list the router's topics with the message counters their publishers reported",
		usage: "[-json]", flags: introspectCommand("topics", wantTopics|wantPublishers, topicsTable)})
}
