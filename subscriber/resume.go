package subscriber

import (
	"math/bits"

	"github.com/parallax-ipc/parallax/internal/ownedsub"
	"github.com/parallax-ipc/parallax/internal/wire"
)

// resumeInfo answers clientrt.Resumer.ResumeInfo: what a restarted router needs to
// take this subscriber and its connections back.
func (s *Subscriber) resumeInfo() (*wire.ResumePublisher, *wire.ResumeSubscriber, []wire.ResumeConnection) {
	if s.closed.Load() {
		return nil, nil, nil
	}
	rs := &wire.ResumeSubscriber{SubID: s.id, Topic: s.topic, History: uint32(s.opts.History), Policy: uint8(s.opts.Policy),
		Type:    wire.TypeInfo{Name: s.opts.TypeName, Size: s.opts.TypeSize, Align: s.opts.TypeAlign},
		MaxHeld: uint32(max(s.opts.MaxHeld, 0))}
	if s.link != nil { // a request/response or event endpoint resumes on its service, paired as created
		rs.Kind, rs.Pair = s.link.Kind, s.link.Pair
	}
	if q := s.opts.QueueCapacity; q > 0 {
		rs.QueueCapacity = uint32(max(2, 1<<bits.Len(uint(q-1))))
	}
	// The live connections; the runtime hands their segments back
	// (clientrt reconnect_owned.go).
	var conns []wire.ResumeConnection
	o := s.own.Load()
	o.mu.Lock()
	for _, oc := range o.conns {
		if oc.c != nil && oc.added != nil && oc.c.State() == ownedsub.Live {
			m := oc.added
			rs.QueueCapacity = m.Capacity // what the router gave this subscriber
			conns = append(conns, wire.ResumeConnection{ConnID: m.ConnID, PubID: m.PubID, SubID: m.SubID,
				Capacity: m.Capacity, Policy: m.Policy})
		}
	}
	o.mu.Unlock()
	return nil, rs, conns
}
