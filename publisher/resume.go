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
	if p.link != nil {
		rp.Kind = p.link.Kind // a request/response endpoint resumes on its service
	}
	// The connections attached to the engine; the runtime hands their
	// segments back (clientrt reconnect_owned.go).
	var conns []wire.ResumeConnection
	o := p.own.Load()
	o.mu.Lock()
	for _, oc := range o.conns {
		if oc.c != nil {
			conns = append(conns, resumeConn(oc.added))
		}
	}
	o.mu.Unlock()
	return rp, nil, conns
}

// resumeSizing answers clientrt.OwnedResumer: the loans bound and the
// payload size this publisher asked the router for, as CreatePublisher
// sent them (0: the router's default; no declared size).
func (p *Publisher) resumeSizing() (maxLoans, maxPayload uint32) {
	return uint32(max(p.opts.MaxLoans, 0)), uint32(max(p.opts.MaxPayload, 0))
}

func resumeConn(m *wire.ConnectionAdded) wire.ResumeConnection {
	return wire.ResumeConnection{ConnID: m.ConnID, PubID: m.PubID, SubID: m.SubID,
		Capacity: m.Capacity, Policy: m.Policy}
}
