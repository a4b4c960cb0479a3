package wire

import (
	"fmt"

	"github.com/vmihailenco/msgpack/v5"
)

// Resuming in the owned memory model (docs/design/memory-ownership.md
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

// EncodeMsgpack writes m as the array [OldClient, MgmtInode, Token,
// Publishers, Subscribers, Connections], with OwnedPubs and ConnSegs
// appended only when one of them is not empty: a shared-model Resume keeps
// its encoding byte for byte.
func (m *Resume) EncodeMsgpack(enc *msgpack.Encoder) error {
	n := 6
	if len(m.OwnedPubs) > 0 || len(m.ConnSegs) > 0 {
		n = 8
	}
	err := enc.EncodeArrayLen(n)
	for _, v := range []any{m.OldClient, m.MgmtInode, m.Token, m.Publishers, m.Subscribers, m.Connections} {
		if err == nil {
			err = enc.Encode(v)
		}
	}
	if n == 8 {
		for _, v := range []any{m.OwnedPubs, m.ConnSegs} {
			if err == nil {
				err = enc.Encode(v)
			}
		}
	}
	return err
}

// DecodeMsgpack reads either form EncodeMsgpack writes; an eight-element
// array with both owned lists empty is not canonical and [Decode] refuses
// it.
func (m *Resume) DecodeMsgpack(dec *msgpack.Decoder) error {
	n, err := dec.DecodeArrayLen()
	if err != nil {
		return err
	}
	if n != 6 && n != 8 {
		return fmt.Errorf("Resume: %d fields, want 6 or 8", n)
	}
	var v Resume
	ptrs := []any{&v.OldClient, &v.MgmtInode, &v.Token, &v.Publishers, &v.Subscribers, &v.Connections}
	if n == 8 {
		ptrs = append(ptrs, &v.OwnedPubs, &v.ConnSegs)
	}
	for _, p := range ptrs {
		if err := dec.Decode(p); err != nil {
			return err
		}
	}
	*m = v
	return nil
}
