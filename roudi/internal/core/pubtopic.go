package core

// PublisherTopic returns the topic of live publisher id, and false if there
// is no such publisher.
func (r *Router) PublisherTopic(id PubID) (string, bool) {
	p, ok := r.pubs[id]
	if !ok || p == nil {
		return "", false
	}
	return p.topic.name, true
}
