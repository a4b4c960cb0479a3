package publisher

import "github.com/parallax-ipc/parallax/internal/wire"

// resumeInfo answers clientrt.Resumer.ResumeInfo: what a restarted router needs to
// take this publisher and its connections back.
func (p *Publisher) resumeInfo() (*wire.ResumePublisher, *wire.ResumeSubscriber, []wire.ResumeConnection) {
	if p.closed.Load() {
		return nil, nil, nil
	}
	rp := &wire.ResumePublisher{PubID: p.id, Topic: p.topic, History: uint32(p.opts.History),
		Type: wire.TypeInfo{Name: p.opts.TypeName, Size: p.opts.TypeSize, Align: p.opts.TypeAlign}}
	var conns []wire.ResumeConnection
	for _, c := range *p.conns.Load() {
		conns = append(conns, resumeConn(&c.added))
	}
	return rp, nil, conns
}

func resumeConn(m *wire.ConnectionAdded) wire.ResumeConnection {
	return wire.ResumeConnection{ConnID: m.ConnID, PubID: m.PubID, SubID: m.SubID,
		RingOffset: m.RingOffset, RingSize: m.RingSize, Capacity: m.Capacity, Policy: m.Policy}
}
