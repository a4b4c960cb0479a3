package roudi

import (
	"encoding/binary"
	"fmt"
	"os"
	"strings"

	"github.com/parallax-ipc/parallax/roudi/internal/core"
)

// The id marks file: the highest publisher, subscriber and connection ids
// this router handed out, <runtime_dir>/<domain>.ids, mode 0600, written
// only by the router that holds the domain lock (after every step that
// raised one: a control-path pwrite per endpoint or connection created).
// An adopting successor starts its ids above them (core.AdoptClients
// Floor): an endpoint that died while no router ran never resumes, and
// its id must not name a new endpoint to the survivors that still know it
// (an rpc server keys its gone clients by their request publisher's id).
//
//	offset  size  field
//	0       4     magic "PXIM"
//	4       4     publisher id
//	8       4     subscriber id
//	12      4     connection id

const (
	idMarksMagic = 0x4d495850 // "PXIM"
	idMarksSize  = 16
)

// idMarksFile is the router's open id marks file. Only the Serve goroutine
// (and New) use it; Close is idempotent.
type idMarksFile struct {
	f    *os.File
	last core.IDMarks // as last written
}

func openIDMarks(cfg *Config) (*idMarksFile, error) {
	path := strings.TrimSuffix(cfg.LockPath(), ".lock") + ".ids"
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		return nil, fmt.Errorf("open the id marks file: %w", err)
	}
	return &idMarksFile{f: f}, nil
}

// read returns the marks a previous router recorded (zero when none).
func (x *idMarksFile) read() core.IDMarks {
	var b [idMarksSize]byte
	if _, err := x.f.ReadAt(b[:], 0); err != nil {
		return core.IDMarks{}
	}
	le := binary.LittleEndian
	if le.Uint32(b[0:]) != idMarksMagic {
		return core.IDMarks{}
	}
	return core.IDMarks{Pub: core.PubID(le.Uint32(b[4:])), Sub: core.SubID(le.Uint32(b[8:])), Link: core.ConnectionID(le.Uint32(b[12:]))}
}

// note records m when it differs from what was last written; a failed
// write is retried at the next step.
func (x *idMarksFile) note(m core.IDMarks) error {
	if x == nil || x.f == nil || m == x.last {
		return nil
	}
	var b [idMarksSize]byte
	le := binary.LittleEndian
	le.PutUint32(b[0:], idMarksMagic)
	le.PutUint32(b[4:], uint32(m.Pub))
	le.PutUint32(b[8:], uint32(m.Sub))
	le.PutUint32(b[12:], uint32(m.Link))
	if _, err := x.f.WriteAt(b[:], 0); err != nil {
		return fmt.Errorf("record id marks: %w", err)
	}
	x.last = m
	return nil
}

// Close closes the file (it stays on disk for the next router).
func (x *idMarksFile) Close() error {
	if x == nil || x.f == nil {
		return nil
	}
	err := x.f.Close()
	x.f = nil
	return err
}
