package wire

// Endpoint kinds ([CreatePublisher.Kind], [CreateSubscriber.Kind]): a
// request/response service is two topics the router keeps apart from
// pub/sub topics of the same name (docs/design/request-response.md).
const (
	// EndpointTopic is a pub/sub publisher or subscriber.
	EndpointTopic uint8 = 0
	// EndpointRequest is a client's request publisher or a server's
	// request subscriber.
	EndpointRequest uint8 = 1
	// EndpointResponse is a server's response publisher or a client's
	// response subscriber.
	EndpointResponse uint8 = 2
	// EndpointEvent is an event service's notifier (publisher) or
	// listener (subscriber): its connections carry event ids, not chunk
	// refs (docs/design/events.md).
	EndpointEvent uint8 = 3
)
