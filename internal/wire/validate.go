package wire

import (
	"errors"
	"fmt"

	"github.com/parallax-ipc/parallax"
)

// Field limits enforced by Validate.
const (
	MaxNameLen       = 255     // topic names, type names, process names
	MaxDomainLen     = 64      // domain names
	MaxTextLen       = 4096    // error messages and reasons
	MaxHistory       = 1 << 16 // samples kept for late joiners
	MaxQueueCapacity = 1 << 20 // ring entries per connection
	MaxAlign         = 1 << 12 // payload type alignment
	MinPageSize      = 4 << 10 // smallest segment page size
	MaxPageSize      = 1 << 30 // largest segment page size (1 GiB hugepages)
	MaxPayloadSize   = 1 << 30 // CreatePublisher.MaxPayload (the largest chunk size)
	MaxLoansLimit    = 1 << 20 // CreatePublisher.MaxLoans
	MaxExpectedSubs  = 1 << 12 // CreatePublisher.ExpectedSubscribers
	MaxHeldLimit     = 1 << 20 // CreateSubscriber.MaxHeld
)

// Errors of this package.
var (
	// ErrInvalidArgument reports a message field outside its limits, or a
	// request the router refused as malformed. It is
	// [parallax.ErrInvalidArgument], so public callers match it; its code
	// is [CodeInvalidArgument].
	ErrInvalidArgument = parallax.ErrInvalidArgument
	// ErrNotFound reports a request naming an object (publisher,
	// subscriber, connection, segment) that does not exist. Its code is
	// [CodeNotFound].
	ErrNotFound = errors.New("not found")
)

func invalid(t Type, field, format string, args ...any) error {
	return fmt.Errorf("%s.%s %s: %w", t, field, fmt.Sprintf(format, args...), ErrInvalidArgument)
}

// ValidateTopic checks a topic name: 1 to [MaxNameLen] bytes of
// [A-Za-z0-9_./-].
func ValidateTopic(topic string) error {
	if err := checkName(topic, MaxNameLen, "./"); err != nil {
		return fmt.Errorf("topic %q: %s: %w", topic, err, ErrInvalidArgument)
	}
	return nil
}

// ValidateDomain checks a domain name: 1 to [MaxDomainLen] bytes of
// [A-Za-z0-9_.-], not starting with a dot. Domain names become file names.
func ValidateDomain(domain string) error {
	if err := checkName(domain, MaxDomainLen, "."); err != nil {
		return fmt.Errorf("domain %q: %s: %w", domain, err, ErrInvalidArgument)
	}
	if domain[0] == '.' {
		return fmt.Errorf("domain %q: must not start with '.': %w", domain, ErrInvalidArgument)
	}
	return nil
}

// checkName accepts 1..maxLen bytes of [A-Za-z0-9_-] plus extra.
func checkName(s string, maxLen int, extra string) error {
	if len(s) == 0 {
		return errors.New("empty")
	}
	if len(s) > maxLen {
		return fmt.Errorf("longer than %d bytes", maxLen)
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		ok := c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '_' || c == '-'
		for j := 0; !ok && j < len(extra); j++ {
			ok = c == extra[j]
		}
		if !ok {
			return fmt.Errorf("byte %q at %d not allowed", c, i)
		}
	}
	return nil
}

func checkLen(t Type, field, s string, limit int) error {
	if len(s) > limit {
		return invalid(t, field, "is %d bytes, limit %d", len(s), limit)
	}
	return nil
}

func isPow2(v uint64) bool { return v != 0 && v&(v-1) == 0 }

func checkPolicy(t Type, p uint8) error {
	if p != PolicyDiscardOldest && p != PolicyBlockProducer {
		return invalid(t, "Policy", "%d unknown", p)
	}
	return nil
}

func (ti *TypeInfo) validate(t Type) error {
	if err := checkLen(t, "Type.Name", ti.Name, MaxNameLen); err != nil {
		return err
	}
	if ti.Align != 0 && (!isPow2(uint64(ti.Align)) || ti.Align > MaxAlign) {
		return invalid(t, "Type.Align", "%d is not 0 or a power of two up to %d", ti.Align, MaxAlign)
	}
	return nil
}

// Validate implements [Message].
func (m *Hello) Validate() error {
	switch {
	case m.MinVersion == 0:
		return invalid(m.MessageType(), "MinVersion", "is 0")
	case m.Version < m.MinVersion:
		return invalid(m.MessageType(), "Version", "%d below MinVersion %d", m.Version, m.MinVersion)
	case m.PID < 0:
		return invalid(m.MessageType(), "PID", "%d negative", m.PID)
	}
	return checkLen(m.MessageType(), "Name", m.Name, MaxNameLen)
}

// Validate implements [Message].
func (m *Welcome) Validate() error {
	if m.Version == 0 {
		return invalid(m.MessageType(), "Version", "is 0")
	}
	if m.RouterPID < 0 {
		return invalid(m.MessageType(), "RouterPID", "%d negative", m.RouterPID)
	}
	if err := ValidateDomain(m.Domain); err != nil {
		return fmt.Errorf("%s.Domain: %w", m.MessageType(), err)
	}
	if n := len(m.ResumeToken); n != 0 && n != ResumeTokenSize {
		return invalid(m.MessageType(), "ResumeToken", "has %d bytes, want %d (or none)", n, ResumeTokenSize)
	}
	return nil
}

// Validate implements [Message].
func (m *Error) Validate() error {
	if !m.Code.Known() {
		return invalid(m.MessageType(), "Code", "%d unknown", uint16(m.Code))
	}
	return checkLen(m.MessageType(), "Message", m.Message, MaxTextLen)
}

// Validate implements [Message].
func (*Ack) Validate() error { return nil }

// Validate implements [Message].
func (*Ping) Validate() error { return nil }

// Validate implements [Message].
func (*Pong) Validate() error { return nil }

// Validate implements [Message].
func (m *Shutdown) Validate() error { return checkLen(m.MessageType(), "Reason", m.Reason, MaxTextLen) }

// Validate implements [Message].
func (m *CreatePublisher) Validate() error {
	if err := ValidateTopic(m.Topic); err != nil {
		return fmt.Errorf("%s.Topic: %w", m.MessageType(), err)
	}
	switch {
	case m.History > MaxHistory:
		return invalid(m.MessageType(), "History", "%d above limit %d", m.History, MaxHistory)
	case m.MaxPayload > MaxPayloadSize:
		return invalid(m.MessageType(), "MaxPayload", "%d above limit %d", m.MaxPayload, MaxPayloadSize)
	case m.MaxLoans > MaxLoansLimit:
		return invalid(m.MessageType(), "MaxLoans", "%d above limit %d", m.MaxLoans, MaxLoansLimit)
	case m.ExpectedSubscribers > MaxExpectedSubs:
		return invalid(m.MessageType(), "ExpectedSubscribers", "%d above limit %d", m.ExpectedSubscribers, MaxExpectedSubs)
	case m.Kind > EndpointEvent:
		return invalid(m.MessageType(), "Kind", "%d unknown", m.Kind)
	case m.Kind != EndpointTopic && m.History != 0:
		return invalid(m.MessageType(), "History", "%d on a request/response endpoint (want 0)", m.History)
	}
	return m.Type.validate(TypeCreatePublisher)
}

// Validate implements [Message].
func (m *PublisherCreated) Validate() error {
	if m.PubID == 0 {
		return invalid(m.MessageType(), "PubID", "is 0")
	}
	return nil
}

// Validate implements [Message].
func (m *CreateSubscriber) Validate() error {
	if err := ValidateTopic(m.Topic); err != nil {
		return fmt.Errorf("%s.Topic: %w", TypeCreateSubscriber, err)
	}
	switch {
	case m.QueueCapacity > MaxQueueCapacity:
		return invalid(TypeCreateSubscriber, "QueueCapacity", "%d above limit %d", m.QueueCapacity, MaxQueueCapacity)
	case m.History > MaxHistory:
		return invalid(TypeCreateSubscriber, "History", "%d above limit %d", m.History, MaxHistory)
	case m.MaxHeld > MaxHeldLimit:
		return invalid(TypeCreateSubscriber, "MaxHeld", "%d above limit %d", m.MaxHeld, MaxHeldLimit)
	case m.Kind > EndpointEvent:
		return invalid(TypeCreateSubscriber, "Kind", "%d unknown", m.Kind)
	case m.Kind != EndpointTopic && m.History != 0:
		return invalid(TypeCreateSubscriber, "History", "%d on a request/response endpoint (want 0)", m.History)
	case (m.Kind == EndpointResponse) != (m.Pair != 0):
		return invalid(TypeCreateSubscriber, "Pair", "%d with kind %d (a response subscriber names its request publisher, nothing else does)", m.Pair, m.Kind)
	}
	if err := checkPolicy(TypeCreateSubscriber, m.Policy); err != nil {
		return err
	}
	return m.Type.validate(TypeCreateSubscriber)
}

// Validate implements [Message].
func (m *SubscriberCreated) Validate() error {
	if m.SubID == 0 {
		return invalid(m.MessageType(), "SubID", "is 0")
	}
	return nil
}

// Validate implements [Message].
func (*ClosePublisher) Validate() error { return nil }

// Validate implements [Message].
func (*CloseSubscriber) Validate() error { return nil }

// Validate implements [Message].
func (m *ReleaseConnection) Validate() error {
	if m.ConnID == 0 {
		return invalid(m.MessageType(), "ConnID", "is 0")
	}
	return nil
}

// Validate implements [Message].
func (m *ConnectionAdded) Validate() error {
	switch {
	case m.ConnID == 0 || m.PubID == 0 || m.SubID == 0:
		return invalid(m.MessageType(), "ConnID", "connection %d, publisher %d, subscriber %d: ids must not be 0", m.ConnID, m.PubID, m.SubID)
	case m.Capacity == 0 || m.Capacity > MaxQueueCapacity:
		return invalid(m.MessageType(), "Capacity", "%d outside [1, %d]", m.Capacity, MaxQueueCapacity)
	case m.History > MaxHistory:
		return invalid(m.MessageType(), "History", "%d above limit %d", m.History, MaxHistory)
	}
	return checkPolicy(m.MessageType(), m.Policy)
}
