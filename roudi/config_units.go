package roudi

import (
	"fmt"
	"math"
	"math/bits"
	"os"
	"strconv"
	"strings"
)

// A ByteSize is a number of bytes. In TOML it is an integer or a string
// with an optional binary unit: "128", "128B", "4KiB", "1 MiB", "2GiB",
// "1TiB" (units are case-insensitive; decimal units such as "KB" are
// rejected to avoid guessing 1000 versus 1024).
type ByteSize uint64

// Byte size units.
const (
	KiB ByteSize = 1 << 10
	MiB ByteSize = 1 << 20
	GiB ByteSize = 1 << 30
	TiB ByteSize = 1 << 40
)

var sizeUnits = map[string]ByteSize{"": 1, "b": 1, "kib": KiB, "mib": MiB, "gib": GiB, "tib": TiB}

// ParseByteSize parses s as described at [ByteSize].
func ParseByteSize(s string) (ByteSize, error) {
	t := strings.TrimSpace(s)
	i := 0
	for i < len(t) && t[i] >= '0' && t[i] <= '9' {
		i++
	}
	if i == 0 {
		return 0, fmt.Errorf("size %q: want a non-negative integer with an optional unit (B, KiB, MiB, GiB, TiB)", s)
	}
	n, err := strconv.ParseUint(t[:i], 10, 64)
	if err != nil {
		return 0, fmt.Errorf("size %q: number out of range", s)
	}
	unit := strings.ToLower(strings.TrimSpace(t[i:]))
	mul, ok := sizeUnits[unit]
	if !ok {
		return 0, fmt.Errorf("size %q: unknown unit %q (use B, KiB, MiB, GiB or TiB)", s, t[i:])
	}
	hi, lo := bits.Mul64(n, uint64(mul))
	if hi != 0 {
		return 0, fmt.Errorf("size %q: overflows 64 bits", s)
	}
	return ByteSize(lo), nil
}

// UnmarshalTOML implements toml.Unmarshaler.
func (b *ByteSize) UnmarshalTOML(v any) error {
	switch v := v.(type) {
	case int64:
		if v < 0 {
			return fmt.Errorf("size %d: must not be negative", v)
		}
		*b = ByteSize(v)
		return nil
	case string:
		n, err := ParseByteSize(v)
		if err != nil {
			return err
		}
		*b = n
		return nil
	}
	return fmt.Errorf("size: want an integer or a string such as \"4KiB\", got %T", v)
}

// String formats b with the largest binary unit that divides it exactly
// ("4 KiB", "100 B").
func (b ByteSize) String() string {
	for _, u := range []struct {
		n    ByteSize
		name string
	}{{TiB, "TiB"}, {GiB, "GiB"}, {MiB, "MiB"}, {KiB, "KiB"}} {
		if b >= u.n && b%u.n == 0 {
			return strconv.FormatUint(uint64(b/u.n), 10) + " " + u.name
		}
	}
	return strconv.FormatUint(uint64(b), 10) + " B"
}

// A FileMode is a permission mode. In TOML it is an octal string ("0700")
// or an integer (0o700).
type FileMode os.FileMode

// UnmarshalTOML implements toml.Unmarshaler.
func (m *FileMode) UnmarshalTOML(v any) error {
	switch v := v.(type) {
	case int64:
		if v < 0 || v > math.MaxUint32 {
			return fmt.Errorf("mode %d: out of range", v)
		}
		*m = FileMode(v)
		return nil
	case string:
		n, err := strconv.ParseUint(strings.TrimPrefix(v, "0o"), 8, 32)
		if err != nil {
			return fmt.Errorf("mode %q: want an octal string such as \"0700\"", v)
		}
		*m = FileMode(n)
		return nil
	}
	return fmt.Errorf("mode: want an octal string such as \"0700\", got %T", v)
}

// String formats m in octal ("0700").
func (m FileMode) String() string { return fmt.Sprintf("%#04o", uint32(m)) }
