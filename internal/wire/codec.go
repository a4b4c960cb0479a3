package wire

import (
	"bytes"
	"fmt"
	"reflect"

	"github.com/vmihailenco/msgpack/v5"

	"github.com/parallax-ipc/parallax"
)

// An Envelope is one decoded message with its request id (0 for pushes).
type Envelope struct {
	ReqID uint32
	Msg   Message
}

// Type returns the type of e.Msg.
func (e Envelope) Type() Type { return e.Msg.MessageType() }

// Encode returns the encoding of m with request id reqID. It validates m
// first (the error wraps [ErrInvalidArgument]) and refuses encodings over
// [MaxMessageSize] (the error wraps [parallax.ErrProtocol]).
func Encode(reqID uint32, m Message) ([]byte, error) {
	if m == nil {
		return nil, fmt.Errorf("encode nil message: %w", ErrInvalidArgument)
	}
	if want := New(m.MessageType()); want == nil || reflect.TypeOf(want) != reflect.TypeOf(m) {
		return nil, fmt.Errorf("encode %T as %s: not a wire message type: %w", m, m.MessageType(), ErrInvalidArgument)
	}
	if m.MessageType().IsPush() && reqID != 0 && !m.MessageType().answersRequests() {
		return nil, fmt.Errorf("encode %s: push with request id %d (want 0): %w", m.MessageType(), reqID, ErrInvalidArgument)
	}
	if err := m.Validate(); err != nil {
		return nil, fmt.Errorf("encode %s: %w", m.MessageType(), err)
	}
	b, err := encode(reqID, m)
	if err != nil {
		return nil, err
	}
	if len(b) > MaxMessageSize {
		return nil, fmt.Errorf("encode %s: %d bytes exceed the %d byte message limit: %w", m.MessageType(), len(b), MaxMessageSize, parallax.ErrProtocol)
	}
	return b, nil
}

// encode writes the canonical envelope without validation.
func encode(reqID uint32, m Message) ([]byte, error) {
	var buf bytes.Buffer
	buf.Grow(64)
	enc := msgpack.NewEncoder(&buf)
	enc.UseArrayEncodedStructs(true)
	enc.UseCompactInts(true)
	err := enc.EncodeArrayLen(3)
	if err == nil {
		err = enc.EncodeUint(uint64(m.MessageType()))
	}
	if err == nil {
		err = enc.EncodeUint(uint64(reqID))
	}
	if err == nil {
		err = enc.Encode(m)
	}
	if err != nil {
		return nil, fmt.Errorf("encode %s: %w", m.MessageType(), err)
	}
	return buf.Bytes(), nil
}

func protoErr(format string, args ...any) error {
	return fmt.Errorf("decode message: %s: %w", fmt.Sprintf(format, args...), parallax.ErrProtocol)
}

// Decode parses one message. Every error wraps [parallax.ErrProtocol]:
// oversized input, an envelope that is not [type, id, body], an unknown
// type, a body that does not decode into its type, a non-canonical encoding
// (extra or missing fields, mistyped or over-wide integers), trailing bytes,
// or a message that fails Validate (then the error also wraps
// [ErrInvalidArgument]). The returned message aliases nothing in b.
func Decode(b []byte) (Envelope, error) {
	if len(b) > MaxMessageSize {
		return Envelope{}, protoErr("%d bytes exceed the %d byte limit", len(b), MaxMessageSize)
	}
	if len(b) == 0 {
		return Envelope{}, protoErr("empty datagram")
	}
	r := bytes.NewReader(b)
	d := msgpack.NewDecoder(r)
	n, err := d.DecodeArrayLen()
	if err != nil || n != 3 {
		return Envelope{}, protoErr("envelope is not a 3-element array [type, id, body]")
	}
	t, err := d.DecodeUint64()
	if err != nil {
		return Envelope{}, protoErr("message type: %v", err)
	}
	if t > 0xffff || New(Type(t)) == nil {
		if name, ok := removedTypes[Type(t)]; ok {
			return Envelope{}, protoErr("unknown message type %d: %s was removed from the protocol (reserved type)", t, name)
		}
		return Envelope{}, protoErr("unknown message type %d", t)
	}
	typ := Type(t)
	id, err := d.DecodeUint64()
	if err != nil || id > 0xffffffff {
		return Envelope{}, protoErr("%s: request id is not a uint32", typ)
	}
	bodyStart := len(b) - r.Len()
	if err := d.Skip(); err != nil {
		return Envelope{}, protoErr("%s: truncated body: %v", typ, err)
	}
	if r.Len() != 0 {
		return Envelope{}, protoErr("%s: %d trailing bytes after the envelope", typ, r.Len())
	}
	m := New(typ)
	if err := msgpack.Unmarshal(b[bodyStart:], m); err != nil {
		return Envelope{}, protoErr("%s: body does not decode: %v", typ, err)
	}
	canon, err := encode(uint32(id), m)
	if err != nil {
		return Envelope{}, protoErr("%s: re-encode: %v", typ, err)
	}
	if !bytes.Equal(canon, b) {
		return Envelope{}, protoErr("%s: non-canonical encoding (extra, missing or mistyped fields)", typ)
	}
	if err := m.Validate(); err != nil {
		return Envelope{}, fmt.Errorf("decode message: %w: %w", parallax.ErrProtocol, err)
	}
	if typ.IsPush() && id != 0 && !typ.answersRequests() {
		return Envelope{}, protoErr("%s: push with request id %d (want 0)", typ, id)
	}
	return Envelope{ReqID: uint32(id), Msg: m}, nil
}
