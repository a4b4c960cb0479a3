package wire

import (
	"encoding/binary"
	"fmt"

	"github.com/parallax-ipc/parallax"
)

// The management segment header, written once by the router before any
// client receives the segment and read once by clients at attach. It is
// part of the protocol ABI: clients refuse a segment whose magic or version
// they do not know.
//
//	offset  size  field
//	0       8     magic "PLXMGMT1" (little-endian u64)
//	8       4     layout version
//	12      4     number of pools
//	16      8     segment size
//	24      8     arena offset (rings and notifiers)
//	32      8     arena size
//	40      8     router pid
//	48      8     hold tables offset (one per client id 1..max)
//	56      4     hold table stride (bytes)
//	60      4     number of hold tables (max clients)
const (
	MgmtMagic      uint64 = 0x31544d474d584c50
	MgmtVersion    uint32 = 1
	MgmtHeaderSize        = 4096
)

// MgmtHeader is the decoded management segment header.
type MgmtHeader struct {
	Version   uint32
	Pools     uint32
	Size      uint64
	ArenaOff  uint64
	ArenaSize uint64
	RouterPID uint64
	// Hold tables: client id c (1-based) owns the table at
	// HoldsOff + (c-1)*HoldsStride.
	HoldsOff    uint64
	HoldsStride uint32
	HoldsCount  uint32
}

// HoldTable returns the offset of client id c's hold table, or false when
// c has none.
func (h MgmtHeader) HoldTable(c uint16) (uint64, bool) {
	if c == 0 || uint32(c) > h.HoldsCount || h.HoldsStride == 0 {
		return 0, false
	}
	return h.HoldsOff + uint64(c-1)*uint64(h.HoldsStride), true
}

// PutMgmtHeader writes h (with the current magic and version) to mem.
func PutMgmtHeader(mem []byte, h MgmtHeader) {
	le := binary.LittleEndian
	le.PutUint64(mem[0:], MgmtMagic)
	le.PutUint32(mem[8:], MgmtVersion)
	le.PutUint32(mem[12:], h.Pools)
	le.PutUint64(mem[16:], h.Size)
	le.PutUint64(mem[24:], h.ArenaOff)
	le.PutUint64(mem[32:], h.ArenaSize)
	le.PutUint64(mem[40:], h.RouterPID)
	le.PutUint64(mem[48:], h.HoldsOff)
	le.PutUint32(mem[56:], h.HoldsStride)
	le.PutUint32(mem[60:], h.HoldsCount)
}

// ReadMgmtHeader decodes and checks the header at the start of mem. A
// foreign or inconsistent header yields an error wrapping parallax.ErrCorrupt.
func ReadMgmtHeader(mem []byte) (MgmtHeader, error) {
	var h MgmtHeader
	if len(mem) < MgmtHeaderSize {
		return h, fmt.Errorf("management segment of %d bytes, header needs %d: %w", len(mem), MgmtHeaderSize, parallax.ErrCorrupt)
	}
	le := binary.LittleEndian
	if m := le.Uint64(mem[0:]); m != MgmtMagic {
		return h, fmt.Errorf("management segment magic %#x, want %#x: %w", m, MgmtMagic, parallax.ErrCorrupt)
	}
	h.Version = le.Uint32(mem[8:])
	if h.Version != MgmtVersion {
		return h, fmt.Errorf("management segment layout version %d, this build knows %d: %w", h.Version, MgmtVersion, parallax.ErrCorrupt)
	}
	h.Pools = le.Uint32(mem[12:])
	h.Size = le.Uint64(mem[16:])
	h.ArenaOff = le.Uint64(mem[24:])
	h.ArenaSize = le.Uint64(mem[32:])
	h.RouterPID = le.Uint64(mem[40:])
	h.HoldsOff = le.Uint64(mem[48:])
	h.HoldsStride = le.Uint32(mem[56:])
	h.HoldsCount = le.Uint32(mem[60:])
	if end := h.HoldsOff + uint64(h.HoldsStride)*uint64(h.HoldsCount); h.HoldsCount > 0 && (h.HoldsOff < MgmtHeaderSize || end > h.Size || end < h.HoldsOff) {
		return h, fmt.Errorf("management segment hold tables %d+%dx%d outside the %d-byte segment: %w", h.HoldsOff, h.HoldsCount, h.HoldsStride, h.Size, parallax.ErrCorrupt)
	}
	if h.Size != uint64(len(mem)) || h.ArenaOff < MgmtHeaderSize || h.ArenaOff > h.Size || h.ArenaSize > h.Size-h.ArenaOff {
		return h, fmt.Errorf("management segment header (size %d, arena %d+%d) does not fit a %d-byte segment: %w",
			h.Size, h.ArenaOff, h.ArenaSize, len(mem), parallax.ErrCorrupt)
	}
	return h, nil
}
