package wire

// Resuming owned memory (docs/design/memory-ownership.md
// §4.3). A client hands its owned memory back to a restarted router inside
// its [Resume]: for each local publisher its read-write data segments
// ([Resume.OwnedPubs]), and for each connection one of its endpoints is
// part of, the connection segment ([Resume.ConnSegs]). The fds travel
// beside the message, in that order: every data segment of OwnedPubs[0],
// OwnedPubs[1], …, then one per ConnSegs entry. The router adopts fds only
// from clients and checks every one (see roudi's server_adopt.go).

// MaxResumeFds bounds the fds one [Resume] carries (SCM_RIGHTS takes at
// most 253 per message).
const MaxResumeFds = 200

// ResumeDataSeg is one data segment a resuming publisher hands back, with
// the inode it maps (the router checks it against the fd).
type ResumeDataSeg struct {
	Seg   DataSegDesc // ReadOnly false: the publisher's read-write fd
	Inode uint64
}

// ResumePubMemory is the owned memory of one resuming publisher.
type ResumePubMemory struct {
	PubID    uint32
	MaxLoans uint32 // as the publisher asked it (0: the router's default)
	Data     []ResumeDataSeg
	// MaxPayload as the publisher declared it (CreatePublisher.MaxPayload;
	// 0: undeclared, which with an untyped topic lets it ask for
	// undersized classes). Added after MaxLoans and Data: a router reads
	// it as 0 from a client that does not send it.
	MaxPayload uint32
}

// ResumeConnSeg is one connection segment a resuming endpoint hands back,
// with the inode it maps. Both ends of a connection hand it back; the
// router adopts it only when both present the same inode.
type ResumeConnSeg struct {
	Seg   ConnSegDesc
	Inode uint64
}

// ResumeFds returns how many fds must travel with m.
func (m *Resume) ResumeFds() int {
	n := len(m.ConnSegs)
	for i := range m.OwnedPubs {
		n += len(m.OwnedPubs[i].Data)
	}
	return n
}

// validateOwned checks the owned part of a Resume.
func (m *Resume) validateOwned() error {
	t := m.MessageType()
	if len(m.OwnedPubs) > MaxResumeItems || len(m.ConnSegs) > MaxResumeItems {
		return invalid(t, "owned lists", "longer than %d", MaxResumeItems)
	}
	if n := m.ResumeFds(); n > MaxResumeFds {
		return invalid(t, "owned segments", "%d fds, more than %d", n, MaxResumeFds)
	}
	for i := range m.OwnedPubs {
		p := &m.OwnedPubs[i]
		if p.PubID == 0 || len(p.Data) == 0 {
			return invalid(t, "OwnedPubs", "publisher id 0 or no data segment")
		}
		if p.MaxLoans > MaxLoansLimit {
			return invalid(t, "OwnedPubs.MaxLoans", "%d exceeds %d", p.MaxLoans, MaxLoansLimit)
		}
		if p.MaxPayload > MaxPayloadSize {
			return invalid(t, "OwnedPubs.MaxPayload", "%d above limit %d", p.MaxPayload, MaxPayloadSize)
		}
		for j := range p.Data {
			d := &p.Data[j].Seg
			if d.PubID != p.PubID || d.ReadOnly {
				return invalid(t, "OwnedPubs.Data", "segment %d names publisher %d (read-only %v) under publisher %d", d.Index, d.PubID, d.ReadOnly, p.PubID)
			}
			if err := validateDataSeg(t, d); err != nil {
				return err
			}
			if p.Data[j].Inode == 0 {
				return invalid(t, "OwnedPubs.Data.Inode", "is 0")
			}
		}
	}
	for i := range m.ConnSegs {
		c := &m.ConnSegs[i]
		if err := validateConnSeg(t, &c.Seg); err != nil {
			return err
		}
		if c.Inode == 0 {
			return invalid(t, "ConnSegs.Inode", "is 0")
		}
	}
	return nil
}
