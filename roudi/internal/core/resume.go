package core

import (
	"fmt"
	"log/slog"
	"slices"

	"github.com/parallax-ipc/parallax"
)

// Resuming after a router restart.
//
// A restarted router that found the previous router's domain lock held
// by live clients (see Server) starts with an empty registry. The server
// tells the core which client ids the previous router had given out
// (AdoptClients); those ids are reserved, so no new client is given one.
// A surviving client reconnects, handshakes as usual, then sends a
// ResumeClient request with its old id, its endpoints and connections and
// the segments it holds (resume_owned.go), which the core re-registers
// under the same ids. A connection is complete when both its ends
// resumed. When the grace period ends (ResumeDeadline), the ids nobody
// resumed are reclaimed (ReclaimClient) and half-resumed connections are
// removed, as for a client that died.

// AdoptClients reserves the client ids found in an adopted management
// segment until they resume or the deadline passes. Identities are what
// the previous router recorded about them (core_identity.go); an id
// without one cannot be resumed.
type AdoptClients struct {
	IDs        []ClientID
	Identities []ClientIdentity
	// Floor is the previous router's highest ids ([Router.IDMarks], as
	// the server recorded them): new endpoints and connections get ids
	// above it, so none reuses the id of one that died while no router
	// ran (its peers may still know that id).
	Floor IDMarks
}

// IDMarks are the highest publisher, subscriber and connection ids a
// router handed out (or adopted).
type IDMarks struct {
	Pub  PubID
	Sub  SubID
	Link ConnectionID
}

// IDMarks returns the highest ids handed out so far; the server records
// them for a successor (AdoptClients.Floor).
func (r *Router) IDMarks() IDMarks { return IDMarks{Pub: r.nextPub, Sub: r.nextSub, Link: r.nextLink} }

// ResumeDeadline ends the grace period for resuming clients.
type ResumeDeadline struct{}

func (AdoptClients) isEvent()   {}
func (ResumeDeadline) isEvent() {}

// ResumeClient is the request of a client re-registering after a restart.
type ResumeClient struct {
	OldClient ClientID
	Token     ResumeToken // issued to OldClient at its Welcome
	Pubs      []RestorePub
	Subs      []RestoreSub
	Links     []RestoreLink
}

// RestorePub is a publisher to re-register under its id.
type RestorePub struct {
	ID      PubID
	Topic   string
	Type    TypeInfo
	History int
	Kind    EndpointKind // as created: a service endpoint resumes on its service (kind.go)
	// Owned model (resume_owned.go): the publisher's loans bound as it
	// asked it (0: the default), its declared payload size (0: none; with
	// an untyped topic it may then ask for undersized classes) and the
	// data segments its client handed back, checked by the server.
	MaxLoans   int
	MaxPayload int
	Data       []RestoreDataSeg
}

// RestoreSub is a subscriber to re-register under its id.
type RestoreSub struct {
	ID       SubID
	Topic    string
	Type     TypeInfo
	Capacity int
	History  int
	Policy   Policy
	// Kind, Pair and MaxHeld as created (CreateSubscriber): a response
	// subscriber resumes paired with its client's request publisher.
	Kind    EndpointKind
	Pair    PubID
	MaxHeld int
}

// RestoreLink is a connection (ring) one of the client's endpoints is part
// of.
type RestoreLink struct {
	ID       ConnectionID
	Pub      PubID
	Sub      SubID
	Capacity int
	Policy   Policy
	// Seg is the connection segment this end handed back.
	Seg *RestoreConnSeg
}

// Resumed is the result of a ResumeClient: the client's id again.
type Resumed struct{ Client ClientID }

func (ResumeClient) isRequest() {}
func (Resumed) isResult()       {}

// pendingLink is a connection declared by one end whose other end has not
// resumed yet.
type pendingLink struct {
	RestoreLink
	declaredBy ClientID
}

func (r *Router) adopt(ev AdoptClients) {
	if r.reserved == nil {
		r.reserved = make(map[ClientID]bool)
	}
	if r.identities == nil {
		r.identities = make(map[ClientID]ClientIdentity)
	}
	for _, id := range ev.IDs {
		if id != 0 {
			r.reserved[id] = true
		}
	}
	for _, in := range ev.Identities {
		if r.reserved[in.Client] {
			r.identities[in.Client] = in
		}
	}
	r.nextPub = max(r.nextPub, ev.Floor.Pub)
	r.nextSub = max(r.nextSub, ev.Floor.Sub)
	r.nextLink = max(r.nextLink, ev.Floor.Link)
	r.log(slog.LevelInfo, "adopted client ids reserved for resuming", slog.Int("clients", len(ev.IDs)))
}

// resume handles a ResumeClient from client c (already connected under a
// new id).
func (r *Router) resume(c *client, req ResumeClient, reply func(Result, error)) {
	fail := func(err error) { reply(nil, fmt.Errorf("resume client %d: %w", req.OldClient, err)) }
	if !r.reserved[req.OldClient] {
		fail(fmt.Errorf("%w: id %d is not awaiting a resume (the router did not adopt it, or its grace period ended)", parallax.ErrProtocol, req.OldClient))
		return
	}
	if err := r.checkResumer(c, req.OldClient, req.Token); err != nil {
		fail(err)
		return
	}
	if len(c.pubs) != 0 || len(c.subs) != 0 {
		fail(fmt.Errorf("%w: resume must come before any other request", parallax.ErrProtocol))
		return
	}
	// Validate everything before changing anything.
	for _, p := range req.Pubs {
		if _, used := r.pubs[p.ID]; used || p.ID == 0 {
			fail(fmt.Errorf("%w: publisher id %d in use", parallax.ErrProtocol, p.ID))
			return
		}
	}
	for _, s := range req.Subs {
		if _, used := r.subs[s.ID]; used || s.ID == 0 {
			fail(fmt.Errorf("%w: subscriber id %d in use", parallax.ErrProtocol, s.ID))
			return
		}
	}
	if err := r.checkOwnedResume(c, req); err != nil {
		fail(err)
		return
	}
	// Re-key the client to its old id (the handshake gave it a new one).
	delete(r.clients, c.id)
	delete(r.reserved, req.OldClient)
	delete(r.identities, req.OldClient)
	c.id = req.OldClient
	r.clients[c.id] = c
	for _, p := range req.Pubs {
		if err := r.checkKind(p.Kind, p.History); err != nil {
			r.log(slog.LevelWarn, "resume: publisher skipped", slog.Int("pub", int(p.ID)), slog.String("topic", p.Topic), slog.Any("err", err))
			continue
		}
		t := r.topicFor(p.Kind, p.Topic, p.Type)
		if t == nil {
			r.log(slog.LevelWarn, "resume: publisher type differs from its topic's; skipped", slog.Int("pub", int(p.ID)), slog.String("topic", p.Topic))
			continue
		}
		pp := &publisher{id: p.ID, client: c, topic: t, history: p.History}
		r.pubs[p.ID] = pp
		c.pubs = append(c.pubs, p.ID)
		t.pubs = append(t.pubs, p.ID)
		r.nextPub = max(r.nextPub, p.ID)
		r.adoptPubMem(pp, p)
	}
	for _, s := range req.Subs {
		err := r.checkKind(s.Kind, s.History)
		if err == nil {
			err = r.checkPair(c, CreateSubscriber{Topic: s.Topic, Kind: s.Kind, Pair: s.Pair})
		}
		if err == nil && s.MaxHeld < 0 {
			err = fmt.Errorf("%w: negative max held %d", parallax.ErrProtocol, s.MaxHeld)
		}
		if err != nil {
			r.log(slog.LevelWarn, "resume: subscriber skipped", slog.Int("sub", int(s.ID)), slog.String("topic", s.Topic), slog.Any("err", err))
			continue
		}
		t := r.topicFor(s.Kind, s.Topic, s.Type)
		if t == nil {
			r.log(slog.LevelWarn, "resume: subscriber type differs from its topic's; skipped", slog.Int("sub", int(s.ID)), slog.String("topic", s.Topic))
			continue
		}
		capacity := s.Capacity
		if capacity <= 0 {
			capacity = r.cfg.Rings.DefaultCapacity
		}
		ss := &subscriber{id: s.ID, pair: s.Pair, client: c, topic: t, capacity: capacity, history: s.History, policy: s.Policy, maxHeld: s.MaxHeld}
		r.subs[s.ID] = ss
		c.subs = append(c.subs, s.ID)
		t.subs = append(t.subs, s.ID)
		r.nextSub = max(r.nextSub, s.ID)
	}
	for _, l := range req.Links {
		r.nextLink = max(r.nextLink, l.ID)
		if _, done := r.links[l.ID]; done {
			continue // both ends in this client, or already completed
		}
		if pl, ok := r.pendingLinks[l.ID]; ok && pl.declaredBy != c.id {
			p, s := r.pubs[l.Pub], r.subs[l.Sub]
			if p != nil && s != nil {
				conn := &connection{id: l.ID, pub: p, sub: s}
				r.links[l.ID] = conn
				p.links = append(p.links, l.ID)
				s.links = append(s.links, l.ID)
				delete(r.pendingLinks, l.ID)
				r.adoptConnSeg(conn, l.Seg)
			}
			continue
		}
		p, s := r.pubs[l.Pub], r.subs[l.Sub]
		if p != nil && s != nil && p.client == c && s.client == c {
			conn := &connection{id: l.ID, pub: p, sub: s}
			r.links[l.ID] = conn
			p.links = append(p.links, l.ID)
			s.links = append(s.links, l.ID)
			r.adoptConnSeg(conn, l.Seg)
			continue
		}
		if r.pendingLinks == nil {
			r.pendingLinks = make(map[ConnectionID]*pendingLink)
		}
		r.pendingLinks[l.ID] = &pendingLink{RestoreLink: l, declaredBy: c.id}
	}
	reply(Resumed{Client: c.id}, nil)
	r.log(slog.LevelInfo, "client resumed", slog.Int("client", int(c.id)), slog.Int("pid", int(c.pid)),
		slog.Int("publishers", len(c.pubs)), slog.Int("subscribers", len(c.subs)))
}

// topicFor returns the topic of kind and name, creating it with typ, or
// nil when it exists with another type.
func (r *Router) topicFor(kind EndpointKind, name string, typ TypeInfo) *topic {
	t := r.topicOf(kind, name)
	if t == nil {
		return r.addTopic(kind, name, typ)
	}
	if t.typ != typ {
		return nil
	}
	return t
}

// resumeDeadline ends the grace period: reserved ids that did not resume
// are reclaimed and half-resumed connections removed.
func (r *Router) resumeDeadline() {
	if r.reserved == nil {
		return // nothing adopted, or the deadline already passed
	}
	ids := make([]ClientID, 0, len(r.reserved))
	for id := range r.reserved {
		ids = append(ids, id)
	}
	slices.Sort(ids)
	for _, id := range ids {
		r.emit(ReclaimClient{Client: id})
		r.log(slog.LevelInfo, "client did not resume; reclaimed", slog.Int("client", int(id)))
	}
	r.reserved, r.identities = nil, nil
	lids := make([]ConnectionID, 0, len(r.pendingLinks))
	for id := range r.pendingLinks {
		lids = append(lids, id)
	}
	slices.Sort(lids)
	for _, id := range lids {
		pl := r.pendingLinks[id]
		rm := ConnectionRemoved{Connection: pl.ID, Pub: pl.Pub, Sub: pl.Sub, Reason: "peer did not resume after the router restart"}
		if p := r.pubs[pl.Pub]; p != nil {
			rm.Conn, rm.Code = p.client.conn, RemovedSubscriberGone
			r.emit(rm)
		}
		if s := r.subs[pl.Sub]; s != nil {
			rm.Conn, rm.Code = s.client.conn, RemovedPublisherGone
			r.emit(rm)
		}
	}
	r.pendingLinks = nil
}
