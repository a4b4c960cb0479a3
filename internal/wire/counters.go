package wire

import (
	"fmt"
	"unicode"
	"unicode/utf8"
)

// Component counters. A client-side component that is more than a
// publisher or subscriber (the NATS gateway, for example) reports its own
// counters to the router with [ReportCounters], periodically; the router
// keeps the latest report per (connection, component, instance) until the
// connection ends and shows it in introspection ([ListComponents]) and in
// its metrics. A report is replaced, never merged: it carries every counter
// of the instance.
//
// These messages were added without a [Version] bump (no existing encoding
// changed). A router built before them does not know the types: it answers
// a ReportCounters with a protocol error and ends the connection, so
// reporting components need a router of the same build or newer.
const (
	// TypeReportCounters reports one component instance's counters;
	// answered by [Ack], or an [Error] (CodeLimit when the connection
	// already has [MaxComponentsPerConn] other instances on record).
	TypeReportCounters Type = 49

	// TypeListComponents asks for a page of the latest component reports;
	// answered by [ComponentList].
	TypeListComponents Type = 74
	TypeComponentList  Type = 75
)

// Limits of the component messages.
const (
	// MaxCounterNameLen bounds component kinds and counter names.
	MaxCounterNameLen = 64
	// MaxCounters bounds the counters of one report.
	MaxCounters = 32
	// MaxComponentsPerConn bounds the instances one control connection may
	// have on record with the router.
	MaxComponentsPerConn = 16
	// MaxComponentPage is the largest number of entries in one
	// [ComponentList]: a report at its limits is about 2.7 KB, so a full
	// page stays well inside [MaxMessageSize] (TestLargestComponentListFits).
	MaxComponentPage = 16
)

// ReportCounters is a component instance's counters as of now. Component
// names the kind of component ("gateway"); Instance tells instances of one
// kind apart (a gateway's id). Counters are cumulative over the instance's
// lifetime (never decreasing), in the order the reporter chooses, with
// distinct names.
type ReportCounters struct {
	Component string
	Instance  string
	Counters  []Counter
}

// Counter is one named cumulative counter.
type Counter struct {
	Name  string
	Value uint64
}

// ListComponents asks for a page of component reports; answered by
// [ComponentList].
type ListComponents struct{ Offset uint32 }

// ComponentList is one page of [ComponentStat] (at most
// [MaxComponentPage]), sorted by component, instance and client id.
type ComponentList struct {
	Components []ComponentStat
	Next       uint32
}

// ComponentStat is the latest report of one component instance: the
// reporting client, how long ago the report arrived, and its counters.
type ComponentStat struct {
	ClientID  uint16
	PID       int32
	Component string
	Instance  string
	AgeMs     uint64 // since the router received the report
	Counters  []Counter
}

// MessageType implements [Message].
func (*ReportCounters) MessageType() Type { return TypeReportCounters }

// MessageType implements [Message].
func (*ListComponents) MessageType() Type { return TypeListComponents }

// MessageType implements [Message].
func (*ComponentList) MessageType() Type { return TypeComponentList }

// Validate implements [Message].
func (m *ReportCounters) Validate() error {
	return validateCounters(m.MessageType(), "", m.Component, m.Instance, m.Counters)
}

// Validate implements [Message].
func (*ListComponents) Validate() error { return nil }

// Validate implements [Message].
func (m *ComponentList) Validate() error {
	t := m.MessageType()
	if len(m.Components) > MaxComponentPage {
		return invalid(t, "Components", "has %d entries, limit %d", len(m.Components), MaxComponentPage)
	}
	for i := range m.Components {
		c := &m.Components[i]
		f := fmt.Sprintf("Components[%d].", i)
		if c.PID < 0 {
			return invalid(t, f+"PID", "%d negative", c.PID)
		}
		if err := validateCounters(t, f, c.Component, c.Instance, c.Counters); err != nil {
			return err
		}
	}
	return nil
}

// ValidateInstance checks a component instance name (a gateway id): 1 to
// [MaxNameLen] bytes of valid UTF-8 without white space or control
// characters (it becomes a Prometheus label value and a table cell).
func ValidateInstance(s string) error {
	switch {
	case s == "":
		return fmt.Errorf("instance name is empty: %w", ErrInvalidArgument)
	case len(s) > MaxNameLen:
		return fmt.Errorf("instance name is %d bytes, limit %d: %w", len(s), MaxNameLen, ErrInvalidArgument)
	case !utf8.ValidString(s):
		return fmt.Errorf("instance name %q is not valid UTF-8: %w", s, ErrInvalidArgument)
	}
	for i, r := range s {
		if unicode.IsSpace(r) || unicode.IsControl(r) {
			return fmt.Errorf("instance name %q: white space or control character %q at %d: %w", s, r, i, ErrInvalidArgument)
		}
	}
	return nil
}

// validateCounters checks the fields ReportCounters and ComponentStat share;
// prefix qualifies the field names.
func validateCounters(t Type, prefix, component, instance string, counters []Counter) error {
	if err := checkName(component, MaxCounterNameLen, ""); err != nil {
		return invalid(t, prefix+"Component", "%q: %v", component, err)
	}
	if err := ValidateInstance(instance); err != nil {
		return fmt.Errorf("%s.%sInstance: %w", t, prefix, err)
	}
	if len(counters) > MaxCounters {
		return invalid(t, prefix+"Counters", "has %d entries, limit %d", len(counters), MaxCounters)
	}
	for i, c := range counters {
		if err := checkName(c.Name, MaxCounterNameLen, ""); err != nil {
			return invalid(t, fmt.Sprintf("%sCounters[%d].Name", prefix, i), "%q: %v", c.Name, err)
		}
		for j := range i {
			if counters[j].Name == c.Name {
				return invalid(t, fmt.Sprintf("%sCounters[%d].Name", prefix, i), "%q repeats Counters[%d]", c.Name, j)
			}
		}
	}
	return nil
}

func init() {
	typeNames[TypeReportCounters] = "ReportCounters"
	typeNames[TypeListComponents] = "ListComponents"
	typeNames[TypeComponentList] = "ComponentList"
}

// countersReplyType is ReplyType for the component messages.
func countersReplyType(t Type) (Type, bool) {
	switch t {
	case TypeReportCounters:
		return TypeAck, true
	case TypeListComponents:
		return TypeComponentList, true
	}
	return 0, false
}

// newCounters is New for the component messages.
func newCounters(t Type) Message {
	switch t {
	case TypeReportCounters:
		return new(ReportCounters)
	case TypeListComponents:
		return new(ListComponents)
	case TypeComponentList:
		return new(ComponentList)
	}
	return nil
}
