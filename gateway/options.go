package gateway

import (
	"errors"
	"fmt"
	"log/slog"
	"strconv"
	"strings"
	"time"
	"unicode"

	"github.com/nats-io/nats.go"

	"github.com/parallax-ipc/parallax"
	"github.com/parallax-ipc/parallax/internal/wire"
)

// DefaultPrefix is the NATS subject prefix used when [Options].Prefix is
// empty.
const DefaultPrefix = "parallax."

// Type is a topic's payload type: the name, size and alignment that
// publishers and subscribers of the topic must agree on. The zero value is
// untyped (variable-size) bytes.
type Type struct {
	Name  string
	Size  uint32
	Align uint32
}

// String formats t as name/size/align.
func (t Type) String() string { return fmt.Sprintf("%s/%d/%d", t.Name, t.Size, t.Align) }

// ParseType parses the name/size/align form of [Type.String]. The name may
// itself contain slashes; size and align are the last two fields.
func ParseType(s string) (Type, error) {
	i := strings.LastIndexByte(s, '/')
	if i < 0 {
		return Type{}, fmt.Errorf("type %q: want name/size/align: %w", s, ErrInvalidArgument)
	}
	j := strings.LastIndexByte(s[:i], '/')
	if j < 0 {
		return Type{}, fmt.Errorf("type %q: want name/size/align: %w", s, ErrInvalidArgument)
	}
	size, err1 := strconv.ParseUint(s[j+1:i], 10, 32)
	align, err2 := strconv.ParseUint(s[i+1:], 10, 32)
	if err := errors.Join(err1, err2); err != nil {
		return Type{}, fmt.Errorf("type %q: size and align must be decimal: %w", s, ErrInvalidArgument)
	}
	return Type{Name: s[:j], Size: uint32(size), Align: uint32(align)}, nil
}

// A Topic is one bridged topic. Type nil means: exporters subscribe to
// untyped bytes, importers take the type from the first message.
type Topic struct {
	Name string
	Type *Type
}

// String formats t in the [ParseTopic] syntax.
func (t Topic) String() string {
	if t.Type == nil {
		return t.Name
	}
	return fmt.Sprintf("%s:%s,%d,%d", t.Name, t.Type.Name, t.Type.Size, t.Type.Align)
}

// ParseTopic parses a command-line topic: "name" (no type given),
// "name:typename", "name:typename,size" or "name:typename,size,align";
// "name:" fixes the type to untyped bytes.
func ParseTopic(s string) (Topic, error) {
	name, typ, hasType := strings.Cut(s, ":")
	if err := wire.ValidateTopic(name); err != nil {
		return Topic{}, fmt.Errorf("parse topic %q: %w", s, err)
	}
	t := Topic{Name: name}
	if !hasType {
		return t, nil
	}
	parts := strings.Split(typ, ",")
	if len(parts) > 3 {
		return Topic{}, fmt.Errorf("parse topic %q: want name:type[,size[,align]]: %w", s, ErrInvalidArgument)
	}
	t.Type = &Type{Name: parts[0]}
	for i, p := range parts[1:] {
		v, err := strconv.ParseUint(p, 10, 32)
		if err != nil {
			return Topic{}, fmt.Errorf("parse topic %q: type %s %q is not a decimal number: %w",
				s, [...]string{"size", "align"}[i], p, ErrInvalidArgument)
		}
		if i == 0 {
			t.Type.Size = uint32(v)
		} else {
			t.Type.Align = uint32(v)
		}
	}
	return t, nil
}

// Options configure a [Gateway]. The zero value is a valid default apart
// from the topics: the NATS server at nats.DefaultURL, subject prefix
// [DefaultPrefix], the router of $PARALLAX_DOMAIN (or "default"), a random
// gateway id, statistics logged every minute to slog.Default() and
// reported to the router every second.
//
// Options are copied by [New]; the slices are not modified.
type Options struct {
	// NATSURL is the NATS server URL (several separated by commas).
	NATSURL string
	// NATSOptions are appended to the gateway's own nats.Options (name,
	// NoEcho, reconnect settings) and so may override them.
	NATSOptions []nats.Option
	// Prefix is prepended to a topic name to form its NATS subject.
	Prefix string
	// Domain and Socket select the local router.
	Domain, Socket string
	// Export are the topics subscribed locally and published to NATS;
	// Import the topics subscribed on NATS and published locally.
	Export, Import []Topic
	// ID identifies this gateway in the header of its messages; "" = a
	// random id.
	ID string
	// QueueCapacity is the exporters' local queue capacity per publisher;
	// 0 = the router's default.
	QueueCapacity int
	// Policy is what happens when the gateway cannot keep up (see
	// [Policy]); the zero value is [PolicyDiscard].
	Policy Policy
	// Unbatched makes exporters publish every sample as its own NATS
	// message. By default an exporter that finds several samples queued
	// publishes them as one batch (see the frame format in the package
	// source, header.go), which saves NATS's per-message costs; importers
	// older than batches refuse those (counted), and non-Parallax
	// consumers read them with [DecodeMessages].
	Unbatched bool
	// MaxMessageSize bounds the size of a message an importer reassembles
	// from parts (a larger one is refused before any memory is loaned);
	// 0 = [DefaultMaxMessageSize]. Exporters split samples larger than
	// the NATS server's max payload whatever this is.
	MaxMessageSize int64
	// MaxPayload is the chunk size of each importer's local publisher when
	// the router runs the owned memory model ([memory] model = "owned"):
	// the largest message an importer can publish there (a larger one is
	// dropped and counted); 0 = the router's [publishers]
	// default_max_payload (4 KiB unless configured). The shared model
	// ignores it.
	MaxPayload int
	// MaxPartial bounds the split messages an importer reassembles at the
	// same time (one per origin publisher at most); when a new one would
	// exceed it, the oldest is dropped. 0 = [DefaultMaxPartial]. Each holds
	// a chunk of its message's size loaned from the local pools, so an
	// importer holds at most MaxPartial * MaxMessageSize bytes of partial
	// messages (512 MiB with the defaults), whatever its peers send.
	MaxPartial int
	// PendingMsgs and PendingBytes are the NATS pending limits of
	// importers that subscribe through nats.go (messages received but not
	// yet published locally); beyond them nats.go drops messages (slow
	// consumer, counted as dropped). 0 = 65536 messages and 256 MiB. The
	// gateway's own import connection holds nothing beyond its read
	// buffer: a slow importer stops reading it.
	PendingMsgs, PendingBytes int
	// ImportWithNATSGo makes core-NATS importers subscribe through the
	// gateway's nats.go connection. By default they use a connection of
	// the gateway's own that reads messages without copying them before
	// the copy into the local chunk (see the package docs, Imports); the
	// gateway uses nats.go anyway when NATSOptions or NATSURL ask for
	// what that connection does not do (TLS, nkeys, JWT or creds files,
	// a token handler, a custom dialer, websocket), and for JetStream.
	// The command line's -import-nats-go sets it.
	ImportWithNATSGo bool
	// Stream, when not empty, makes the gateway use JetStream: exporters
	// publish to the stream of that name (created, capturing
	// Prefix + ">", if it does not exist) and wait for its
	// acknowledgements; importers consume with durable consumers, so
	// that messages published while the importing domain was down are
	// delivered when it is back. The NATS server must have JetStream
	// enabled.
	Stream string
	// Durable names the importers' durable consumers: Durable + "_" +
	// the topic with other characters than letters, digits, '-' and '_'
	// replaced by '_'. "" = "parallax_" + ID (so give an ID, or the
	// consumer is new on every start).
	Durable string
	// Logger receives errors, reconnections and periodic statistics;
	// nil = slog.Default().
	Logger *slog.Logger
	// StatsInterval is the period of the statistics log line; 0 = one
	// minute, negative = never.
	StatsInterval time.Duration
	// ReportInterval is the period of the counter reports to the router
	// (shown by `parallax gateways` and the router's metrics); 0 =
	// [DefaultReportInterval], negative = never.
	ReportInterval time.Duration
	// MinBackoff and MaxBackoff bound the exponential backoff between
	// reconnection attempts (router and NATS); 0 = 50 ms and 5 s.
	MinBackoff, MaxBackoff time.Duration
	// SubscriberWait bounds how long an importer whose local publisher was
	// just created waits for the router to connect existing subscribers
	// before publishing its first message; 0 = 100 ms.
	SubscriberWait time.Duration
}

// DefaultMaxMessageSize and DefaultMaxPartial are the defaults of
// [Options].MaxMessageSize and MaxPartial.
const (
	DefaultMaxMessageSize = 64 << 20
	DefaultMaxPartial     = 8
)

// A Policy is what a gateway does when it cannot forward as fast as
// messages arrive. It is [parallax.Policy]: the gateway applies the
// queue-full policy of its local subscribers to the whole bridge. Flags and
// configuration spell it "discard" or "block" (or the full names,
// [parallax.ParsePolicy]).
type Policy = parallax.Policy

const (
	// PolicyDiscard keeps publishers at full speed: an exporter's local
	// queue discards its oldest samples, a publish to NATS that nats.go
	// refuses (reconnect buffer full) is dropped, and an importer drops a
	// message it cannot publish locally (pool exhausted). Every loss is
	// counted.
	PolicyDiscard = parallax.DiscardOldest
	// PolicyBlock slows publishers down instead: exporters subscribe
	// locally with block-producer queues (a local publisher waits, up to
	// its BlockTimeout, for the gateway), wait for NATS while it is
	// unreachable instead of dropping, and importers wait for pool
	// chunks. What can still be lost is counted: samples a local
	// publisher gave up on after its BlockTimeout (seen as sequence gaps
	// by the exporter), NATS messages beyond an importer's pending limits
	// (slow consumer) and messages the NATS server did not deliver (gaps
	// at the importer). Use [Options].Stream for persistence.
	PolicyBlock = parallax.BlockProducer
)

// ParsePolicy is [parallax.ParsePolicy]: "discard" or "block" (or
// "discard-oldest", "block-producer").
func ParsePolicy(s string) (Policy, error) { return parallax.ParsePolicy(s) }

func (o *Options) setDefaults() {
	if o.MaxMessageSize <= 0 {
		o.MaxMessageSize = DefaultMaxMessageSize
	}
	if o.MaxPartial <= 0 {
		o.MaxPartial = DefaultMaxPartial
	}
	if o.PendingMsgs <= 0 {
		o.PendingMsgs = 1 << 16
	}
	if o.PendingBytes <= 0 {
		o.PendingBytes = 256 << 20
	}
	if o.NATSURL == "" {
		o.NATSURL = nats.DefaultURL
	}
	if o.Prefix == "" {
		o.Prefix = DefaultPrefix
	}
	if o.Logger == nil {
		o.Logger = slog.Default()
	}
	if o.StatsInterval == 0 {
		o.StatsInterval = time.Minute
	}
	if o.ReportInterval == 0 {
		o.ReportInterval = DefaultReportInterval
	}
	if o.MinBackoff <= 0 {
		o.MinBackoff = 50 * time.Millisecond
	}
	if o.MaxBackoff <= 0 {
		o.MaxBackoff = 5 * time.Second
	}
	o.MaxBackoff = max(o.MaxBackoff, o.MinBackoff)
	if o.SubscriberWait <= 0 {
		o.SubscriberWait = 100 * time.Millisecond
	}
}

func (o *Options) validate() error {
	if len(o.Export) == 0 && len(o.Import) == 0 {
		return fmt.Errorf("gateway: no topic to export or import: %w", ErrInvalidArgument)
	}
	for _, list := range []struct {
		what   string
		topics []Topic
	}{{"export", o.Export}, {"import", o.Import}} {
		seen := map[string]bool{}
		for _, t := range list.topics {
			if err := wire.ValidateTopic(t.Name); err != nil {
				return fmt.Errorf("gateway: %s: %w", list.what, err)
			}
			if seen[t.Name] {
				return fmt.Errorf("gateway: topic %q listed twice in %s: %w", t.Name, list.what, ErrInvalidArgument)
			}
			seen[t.Name] = true
			if err := validSubject(o.Prefix + t.Name); err != nil {
				return fmt.Errorf("gateway: %s %q: %w", list.what, t.Name, err)
			}
		}
	}
	if o.ID != "" {
		if err := wire.ValidateInstance(o.ID); err != nil {
			return fmt.Errorf("gateway: id: %w", err)
		}
	}
	if !o.Policy.Valid() {
		return fmt.Errorf("gateway: %v: %w", o.Policy, ErrInvalidArgument)
	}
	if o.MaxPayload < 0 {
		return fmt.Errorf("gateway: max payload %d is negative: %w", o.MaxPayload, ErrInvalidArgument)
	}
	for _, t := range append(append([]Topic(nil), o.Export...), o.Import...) {
		if t.Type != nil && len(t.Type.Name) > maxFrameIDLen {
			return fmt.Errorf("gateway: topic %q: type name of %d bytes, limit %d: %w", t.Name, len(t.Type.Name), maxFrameIDLen, ErrInvalidArgument)
		}
	}
	return nil
}

// validSubject checks a NATS subject: non-empty dot-separated tokens, no
// white space, no wildcard token.
func validSubject(s string) error {
	for tok := range strings.SplitSeq(s, ".") {
		switch {
		case tok == "":
			return fmt.Errorf("NATS subject %q has an empty token: %w", s, ErrInvalidArgument)
		case tok == "*" || tok == ">":
			return fmt.Errorf("NATS subject %q has a wildcard token: %w", s, ErrInvalidArgument)
		case strings.ContainsFunc(tok, unicode.IsSpace):
			return fmt.Errorf("NATS subject %q contains white space: %w", s, ErrInvalidArgument)
		}
	}
	return nil
}
