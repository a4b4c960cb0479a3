package roudi

import (
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"

	"github.com/parallax-ipc/parallax/roudi/internal/core"
)

// The identity file: what a restarted router checks resuming clients
// against (core_identity.go). It lives beside the domain lock,
// <runtime_dir>/<domain>.clients, mode 0600, written only by the router
// that holds the lock, so it survives a router crash and no client can
// forge it (it is in no shared memory at all).
// It holds one fixed-size record per client id, at (id-1)*identityRecSize:
//
//	offset  size  field
//	0       4     magic "PXID"
//	4       2     client id
//	6       2     zero
//	8       4     pid
//	12      4     uid
//	16      32    SHA-256 of the client's resume token
//	48      16    zero
//
// A record is written at each Welcome (a control-path pwrite, never on the
// data path) and read only when adopting.

const (
	identityMagic   = 0x44495850 // "PXID"
	identityRecSize = 64
)

// identityFile is the router's open identity file. Use openIdentityFile;
// Close is idempotent. Only the Serve goroutine (and New) use it.
type identityFile struct{ f *os.File }

// identityPath returns the identity file path for cfg.
func identityPath(cfg *Config) string {
	return strings.TrimSuffix(cfg.LockPath(), ".lock") + ".clients"
}

func openIdentityFile(cfg *Config) (*identityFile, error) {
	f, err := os.OpenFile(identityPath(cfg), os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		return nil, fmt.Errorf("open the client identity file: %w", err)
	}
	return &identityFile{f: f}, nil
}

// put records id.
func (x *identityFile) put(id core.ClientIdentity) error {
	if id.Client == 0 {
		return errors.New("record identity: client id 0")
	}
	var b [identityRecSize]byte
	le := binary.LittleEndian
	le.PutUint32(b[0:], identityMagic)
	le.PutUint16(b[4:], uint16(id.Client))
	le.PutUint32(b[8:], uint32(id.PID))
	le.PutUint32(b[12:], id.UID)
	copy(b[16:48], id.TokenHash[:])
	if _, err := x.f.WriteAt(b[:], int64(id.Client-1)*identityRecSize); err != nil {
		return fmt.Errorf("record identity of client %d: %w", id.Client, err)
	}
	return nil
}

// get reads client c's record; false when there is none (or it is not a
// record of c).
func (x *identityFile) get(c core.ClientID) (core.ClientIdentity, bool) {
	var b [identityRecSize]byte
	if c == 0 {
		return core.ClientIdentity{}, false
	}
	if _, err := x.f.ReadAt(b[:], int64(c-1)*identityRecSize); err != nil && !errors.Is(err, io.EOF) {
		return core.ClientIdentity{}, false
	}
	le := binary.LittleEndian
	if le.Uint32(b[0:]) != identityMagic || core.ClientID(le.Uint16(b[4:])) != c {
		return core.ClientIdentity{}, false
	}
	id := core.ClientIdentity{Client: c, PID: int32(le.Uint32(b[8:])), UID: le.Uint32(b[12:])}
	copy(id.TokenHash[:], b[16:48])
	return id, true
}

// Close closes the file (it stays on disk for the next router).
func (x *identityFile) Close() error {
	if x == nil || x.f == nil {
		return nil
	}
	err := x.f.Close()
	x.f = nil
	return err
}

// clear removes client c's record: a client that left will not resume.
func (x *identityFile) clear(c core.ClientID) {
	if c == 0 || x == nil || x.f == nil {
		return
	}
	var b [identityRecSize]byte
	_, _ = x.f.WriteAt(b[:], int64(c-1)*identityRecSize) // a stale record only reserves an id for one grace period
}

// maxIdentityRecords bounds the file read when adopting: client ids are
// 16-bit.
const maxIdentityRecords = 1 << 16

// all returns every well-formed record, in id order. The file is the
// router's own (0600, written only under the domain lock), yet a torn or
// foreign record is skipped rather than trusted.
func (x *identityFile) all() []core.ClientIdentity {
	var out []core.ClientIdentity
	for i := 1; i < maxIdentityRecords; i++ {
		c := core.ClientID(i)
		var b [4]byte
		if _, err := x.f.ReadAt(b[:], int64(c-1)*identityRecSize); err != nil {
			break // end of file
		}
		if id, ok := x.get(c); ok {
			out = append(out, id)
		}
	}
	return out
}
