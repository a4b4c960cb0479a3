package wire

// Resuming after a router restart (types 56–63). When its router dies, a
// client keeps its segments mapped and its rings flowing, reconnects to
// the next router of the domain and, after the handshake, sends [Resume]:
// the client id it had and every publisher, subscriber and connection it
// still runs. A router that adopted the old segments (it finds them through
// the surviving processes) re-registers them under the same ids and answers
// [Resumed]; one that could not adopt them answers an Error (the client's
// endpoints keep running on the old segments, unknown to the new router).
const (
	TypeResume  Type = 56
	TypeResumed Type = 57

	// TypeResumeFirst..TypeResumeLast is the range of resume messages.
	TypeResumeFirst Type = 56
	TypeResumeLast  Type = 63
)

// MaxResumeItems bounds each list of a [Resume].
const MaxResumeItems = 1024

// ResumeTokenSize is the length of the resume token a [Welcome] carries.
const ResumeTokenSize = 32

// ResumePublisher is one publisher a resuming client still runs.
type ResumePublisher struct {
	PubID   uint32
	Topic   string
	Type    TypeInfo
	History uint32
	// Kind is the endpoint kind it was created with
	// ([CreatePublisher.Kind]): a request/response or event endpoint
	// resumes on its service, not on a topic of the same name.
	Kind uint8
}

// ResumeSubscriber is one subscriber a resuming client still runs.
type ResumeSubscriber struct {
	SubID         uint32
	Topic         string
	Type          TypeInfo
	QueueCapacity uint32
	History       uint32
	Policy        uint8
	// Kind, Pair and MaxHeld are what it was created with
	// ([CreateSubscriber]): a response subscriber resumes paired with its
	// client's request publisher.
	Kind    uint8
	Pair    uint32
	MaxHeld uint32
}

// ResumeConnection is one connection a resuming client's endpoint is part
// of (its segment travels in [Resume.ConnSegs]).
type ResumeConnection struct {
	ConnID   uint32
	PubID    uint32
	SubID    uint32
	Capacity uint32
	Policy   uint8
}

// Resume asks the router to take the client's endpoints back.
type Resume struct {
	OldClient   uint16
	Token       []byte // the ResumeToken of OldClient's Welcome
	Publishers  []ResumePublisher
	Subscribers []ResumeSubscriber
	Connections []ResumeConnection
	// The publishers' data segments and the connection segments handed
	// back, fds attached (resume_owned.go).
	OwnedPubs []ResumePubMemory
	ConnSegs  []ResumeConnSeg
}

// Resumed answers a [Resume]: the client runs under ClientID again.
type Resumed struct {
	ClientID uint16
}

// MessageType implements [Message].
func (*Resume) MessageType() Type { return TypeResume }

// MessageType implements [Message].
func (*Resumed) MessageType() Type { return TypeResumed }

// Validate implements [Message].
func (m *Resume) Validate() error {
	t := m.MessageType()
	if m.OldClient == 0 {
		return invalid(t, "OldClient", "is 0")
	}
	if len(m.Token) > ResumeTokenSize {
		return invalid(t, "Token", "%d bytes, longer than %d", len(m.Token), ResumeTokenSize)
	}
	if len(m.Publishers) > MaxResumeItems || len(m.Subscribers) > MaxResumeItems || len(m.Connections) > MaxResumeItems {
		return invalid(t, "lists", "longer than %d", MaxResumeItems)
	}
	for i := range m.Publishers {
		p := &m.Publishers[i]
		if p.PubID == 0 {
			return invalid(t, "Publishers.PubID", "is 0")
		}
		if err := ValidateTopic(p.Topic); err != nil {
			return invalid(t, "Publishers.Topic", "%v", err)
		}
		if err := checkLen(t, "Publishers.Type.Name", p.Type.Name, MaxNameLen); err != nil {
			return err
		}
		if p.Kind > EndpointEvent {
			return invalid(t, "Publishers.Kind", "%d unknown", p.Kind)
		}
	}
	for i := range m.Subscribers {
		s := &m.Subscribers[i]
		if s.SubID == 0 {
			return invalid(t, "Subscribers.SubID", "is 0")
		}
		if err := ValidateTopic(s.Topic); err != nil {
			return invalid(t, "Subscribers.Topic", "%v", err)
		}
		if err := checkLen(t, "Subscribers.Type.Name", s.Type.Name, MaxNameLen); err != nil {
			return err
		}
		if s.Policy > PolicyBlockProducer {
			return invalid(t, "Subscribers.Policy", "%d unknown", s.Policy)
		}
		switch {
		case s.Kind > EndpointEvent:
			return invalid(t, "Subscribers.Kind", "%d unknown", s.Kind)
		case (s.Kind == EndpointResponse) != (s.Pair != 0):
			return invalid(t, "Subscribers.Pair", "%d with kind %d (a response subscriber names its request publisher, nothing else does)", s.Pair, s.Kind)
		case s.MaxHeld > MaxHeldLimit:
			return invalid(t, "Subscribers.MaxHeld", "%d above limit %d", s.MaxHeld, MaxHeldLimit)
		}
	}
	for i := range m.Connections {
		c := &m.Connections[i]
		if c.ConnID == 0 || c.PubID == 0 || c.SubID == 0 {
			return invalid(t, "Connections", "an id is 0")
		}
		if c.Capacity == 0 || c.Capacity&(c.Capacity-1) != 0 {
			return invalid(t, "Connections.Capacity", "%d is not a power of two", c.Capacity)
		}
		if c.Policy > PolicyBlockProducer {
			return invalid(t, "Connections.Policy", "%d unknown", c.Policy)
		}
	}
	return m.validateOwned()
}

// Validate implements [Message].
func (m *Resumed) Validate() error {
	if m.ClientID == 0 {
		return invalid(m.MessageType(), "ClientID", "is 0")
	}
	return nil
}

func init() {
	typeNames[TypeResume] = "Resume"
	typeNames[TypeResumed] = "Resumed"
}

// resumeReplyType is ReplyType for the resume range.
func resumeReplyType(t Type) (Type, bool) {
	if t == TypeResume {
		return TypeResumed, true
	}
	return 0, false
}

// newResume is New for the resume range.
func newResume(t Type) Message {
	switch t {
	case TypeResume:
		return new(Resume)
	case TypeResumed:
		return new(Resumed)
	}
	return nil
}
