package pipeline

import (
	"errors"
	"fmt"
	"math"
	"strconv"
	"strings"
	"time"
)

// PropType is the type of an element property.
type PropType uint8

// Property types.
const (
	PropString   PropType = iota // any text
	PropInt                      // a decimal (or 0x hex) 64-bit integer
	PropFloat                    // a float64
	PropBool                     // true/false, yes/no, on/off, 1/0
	PropEnum                     // one of PropSpec.Enum
	PropBytes                    // a byte size: 4096, 64KiB, 1MiB, 2MB, 1.5GiB
	PropDuration                 // a Go duration: 10ms, 1.5s
)

var propTypeNames = [...]string{"string", "int", "float", "bool", "enum", "bytes", "duration"}

// String returns the type's name.
func (t PropType) String() string {
	if int(t) < len(propTypeNames) {
		return propTypeNames[t]
	}
	return fmt.Sprintf("proptype(%d)", t)
}

// PropSpec describes one property of an element.
type PropSpec struct {
	Name        string
	Type        PropType
	Description string
	// Default is the value used when the property is not set, written as
	// it would be on a launch line ("" for a string means empty). It is
	// parsed when the factory is registered, so a bad default is found
	// early.
	Default string
	// Enum lists the allowed values of a PropEnum.
	Enum []string
	// Min and Max bound PropInt, PropFloat, PropBytes and PropDuration
	// (in nanoseconds) values when Min < Max.
	Min, Max float64
}

// Errors of property handling, wrapped in [*PropertyError].
var (
	ErrUnknownProperty = errors.New("unknown property")
	ErrBadValue        = errors.New("bad property value")
)

// A PropertyError names the element, the property and what was wrong, with
// a suggestion when one helps ("did you mean \"size\"?").
type PropertyError struct {
	Element  string
	Property string
	Value    string
	Hint     string
	Err      error // ErrUnknownProperty or ErrBadValue, possibly wrapping a parse error
}

func (e *PropertyError) Error() string {
	var s string
	if errors.Is(e.Err, ErrUnknownProperty) {
		s = fmt.Sprintf("%s: unknown property %q", e.Element, e.Property)
	} else {
		s = fmt.Sprintf("%s: property %q: bad value %q: %v", e.Element, e.Property, e.Value, e.Err)
	}
	if e.Hint != "" {
		s += " (" + e.Hint + ")"
	}
	return s
}

// Unwrap returns the cause.
func (e *PropertyError) Unwrap() error { return e.Err }

// Props holds an element's typed property values, defaults filled in. The
// getters panic on a name the factory did not declare or a type mismatch:
// that is a bug in the element, never bad input. A Props is not safe for
// concurrent mutation.
type Props struct {
	element string
	specs   []PropSpec
	vals    map[string]any
	set     map[string]bool
}

// ParseValue parses s as a value of spec's type.
func ParseValue(spec PropSpec, s string) (any, error) {
	var v any
	var f float64 // for bounds
	switch spec.Type {
	case PropString:
		return s, nil
	case PropInt:
		n, err := strconv.ParseInt(strings.ReplaceAll(s, "_", ""), 0, 64)
		if err != nil {
			return nil, errors.New("not an integer")
		}
		v, f = n, float64(n)
	case PropFloat:
		x, err := strconv.ParseFloat(s, 64)
		if err != nil || math.IsNaN(x) {
			return nil, errors.New("not a number")
		}
		v, f = x, x
	case PropBool:
		switch strings.ToLower(s) {
		case "true", "yes", "on", "1":
			return true, nil
		case "false", "no", "off", "0":
			return false, nil
		}
		return nil, errors.New("not a boolean (true/false)")
	case PropEnum:
		for _, e := range spec.Enum {
			if e == s {
				return s, nil
			}
		}
		msg := "one of " + strings.Join(spec.Enum, ", ")
		if c := closest(s, spec.Enum); c != "" {
			msg = fmt.Sprintf("did you mean %q? (%s)", c, msg)
		}
		return nil, errors.New(msg)
	case PropBytes:
		n, err := ParseBytes(s)
		if err != nil {
			return nil, err
		}
		v, f = n, float64(n)
	case PropDuration:
		d, err := time.ParseDuration(s)
		if err != nil {
			return nil, errors.New("not a duration (like 10ms, 1.5s)")
		}
		v, f = d, float64(d)
	default:
		return nil, fmt.Errorf("unknown property type %v", spec.Type)
	}
	if spec.Min < spec.Max && (f < spec.Min || f > spec.Max) {
		return nil, fmt.Errorf("out of range [%s, %s]", fmtBound(spec, spec.Min), fmtBound(spec, spec.Max))
	}
	return v, nil
}

func fmtBound(spec PropSpec, x float64) string {
	switch spec.Type {
	case PropDuration:
		return time.Duration(x).String()
	case PropBytes:
		return FormatBytes(int64(x))
	}
	return strconv.FormatFloat(x, 'g', -1, 64)
}

var byteUnits = []struct {
	suffix string
	mult   float64
}{
	{"KiB", 1 << 10}, {"MiB", 1 << 20}, {"GiB", 1 << 30}, {"TiB", 1 << 40},
	{"KB", 1e3}, {"MB", 1e6}, {"GB", 1e9}, {"TB", 1e12},
	{"K", 1 << 10}, {"M", 1 << 20}, {"G", 1 << 30}, {"B", 1},
}

// ParseBytes parses a byte size: a non-negative number with an optional
// unit (B, KiB, MiB, GiB, TiB for powers of 1024, KB, MB, GB, TB for powers
// of 1000, K, M, G as binary shorthands).
func ParseBytes(s string) (int64, error) {
	num, mult := s, 1.0
	for _, u := range byteUnits {
		if strings.HasSuffix(s, u.suffix) {
			num, mult = strings.TrimSpace(strings.TrimSuffix(s, u.suffix)), u.mult
			break
		}
	}
	x, err := strconv.ParseFloat(num, 64)
	if err != nil || x < 0 || math.IsNaN(x) || math.IsInf(x, 0) {
		return 0, errors.New("not a byte size (like 4096, 64KiB, 1MiB)")
	}
	x *= mult
	if x >= math.MaxInt64 {
		return 0, errors.New("byte size too large")
	}
	return int64(x), nil
}

// FormatBytes formats n with the largest binary unit dividing it.
func FormatBytes(n int64) string {
	for _, u := range []struct {
		s string
		m int64
	}{{"TiB", 1 << 40}, {"GiB", 1 << 30}, {"MiB", 1 << 20}, {"KiB", 1 << 10}} {
		if n != 0 && n%u.m == 0 {
			return strconv.FormatInt(n/u.m, 10) + u.s
		}
	}
	return strconv.FormatInt(n, 10)
}

func (p *Props) spec(name string) *PropSpec {
	for i := range p.specs {
		if p.specs[i].Name == name {
			return &p.specs[i]
		}
	}
	return nil
}

// Set parses and sets a property from its text form.
func (p *Props) Set(name, value string) error {
	spec := p.spec(name)
	if spec == nil {
		e := &PropertyError{Element: p.element, Property: name, Value: value, Err: ErrUnknownProperty}
		names := make([]string, len(p.specs))
		for i, s := range p.specs {
			names[i] = s.Name
		}
		if c := closest(name, names); c != "" {
			e.Hint = fmt.Sprintf("did you mean %q?", c)
		} else if len(names) > 0 {
			e.Hint = "properties: " + strings.Join(names, ", ")
		} else {
			e.Hint = "it has no properties"
		}
		return e
	}
	v, err := ParseValue(*spec, value)
	if err != nil {
		return &PropertyError{Element: p.element, Property: name, Value: value, Err: fmt.Errorf("%w: %v %s", ErrBadValue, err, "("+spec.Type.String()+")")}
	}
	p.vals[name] = v
	p.set[name] = true
	return nil
}

// IsSet reports whether the property was set explicitly.
func (p *Props) IsSet(name string) bool { return p.set[name] }

func (p *Props) get(name string, t PropType) any {
	spec := p.spec(name)
	if spec == nil || (spec.Type != t && (t != PropString || spec.Type != PropEnum)) {
		panic(fmt.Sprintf("pipeline: element %s reads undeclared property %q as %v", p.element, name, t))
	}
	return p.vals[name]
}

// String returns a string or enum property.
func (p *Props) String(name string) string { return p.get(name, PropString).(string) }

// Int returns an int property.
func (p *Props) Int(name string) int64 { return p.get(name, PropInt).(int64) }

// Float returns a float property.
func (p *Props) Float(name string) float64 { return p.get(name, PropFloat).(float64) }

// Bool returns a bool property.
func (p *Props) Bool(name string) bool { return p.get(name, PropBool).(bool) }

// Bytes returns a byte-size property.
func (p *Props) Bytes(name string) int64 { return p.get(name, PropBytes).(int64) }

// Duration returns a duration property.
func (p *Props) Duration(name string) time.Duration {
	return p.get(name, PropDuration).(time.Duration)
}

// closest returns the candidate nearest to s by edit distance when it is
// near enough to be a plausible typo, else "".
func closest(s string, candidates []string) string {
	best, bestD := "", 1<<30
	for _, c := range candidates {
		if d := editDistance(strings.ToLower(s), strings.ToLower(c)); d < bestD {
			best, bestD = c, d
		}
	}
	if best == "" || bestD > max(2, len(s)/3) {
		return ""
	}
	return best
}

func editDistance(a, b string) int {
	ra, rb := []rune(a), []rune(b)
	prev := make([]int, len(rb)+1)
	cur := make([]int, len(rb)+1)
	for j := range prev {
		prev[j] = j
	}
	for i := 1; i <= len(ra); i++ {
		cur[0] = i
		for j := 1; j <= len(rb); j++ {
			cost := 1
			if ra[i-1] == rb[j-1] {
				cost = 0
			}
			cur[j] = min(prev[j]+1, cur[j-1]+1, prev[j-1]+cost)
		}
		prev, cur = cur, prev
	}
	return prev[len(rb)]
}
