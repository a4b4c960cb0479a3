package wire

import (
	"context"
	"errors"
	"fmt"
	"os"

	"github.com/parallax-ipc/parallax"
)

// A Code classifies an error for the trip over the control socket. Its
// numeric values are part of the protocol.
type Code uint16

// Error codes.
const (
	CodeOK               Code = 0  // no error
	CodeUnknown          Code = 1  // an error with no better code
	CodeProtocol         Code = 2  // parallax.ErrProtocol
	CodeProtocolVersion  Code = 3  // parallax.ErrProtocolVersion
	CodeIncompatibleType Code = 4  // parallax.ErrIncompatibleType
	CodePermissionDenied Code = 5  // parallax.ErrPermissionDenied
	CodeTopicNotFound    Code = 6  // parallax.ErrTopicNotFound
	CodePoolExhausted    Code = 7  // parallax.ErrPoolExhausted
	CodeLimit            Code = 8  // parallax.ErrLimit
	CodeInvalidArgument  Code = 9  // parallax.ErrInvalidArgument (ErrInvalidArgument)
	CodeNotFound         Code = 10 // ErrNotFound
	CodeNotSupported     Code = 11 // parallax.ErrNotSupported
	CodeUnavailable      Code = 12 // parallax.ErrDaemonUnavailable
	CodeTimeout          Code = 13 // parallax.ErrTimeout
	codeEnd                   = 14
)

var codeNames = [codeEnd]string{
	"ok", "unknown", "protocol", "protocol-version", "incompatible-type", "permission-denied",
	"topic-not-found", "pool-exhausted", "limit", "invalid-argument", "not-found",
	"not-supported", "unavailable", "timeout",
}

// codeSentinels maps codes to the sentinel a [*RemoteError] unwraps to. The
// order is the order [CodeOf] tries them.
var codeSentinels = []struct {
	code Code
	err  error
}{
	{CodeProtocolVersion, parallax.ErrProtocolVersion},
	{CodeProtocol, parallax.ErrProtocol},
	{CodeIncompatibleType, parallax.ErrIncompatibleType},
	{CodePermissionDenied, parallax.ErrPermissionDenied},
	{CodeTopicNotFound, parallax.ErrTopicNotFound},
	{CodePoolExhausted, parallax.ErrPoolExhausted},
	{CodeLimit, parallax.ErrLimit},
	{CodeInvalidArgument, ErrInvalidArgument},
	{CodeNotFound, ErrNotFound},
	{CodeNotSupported, parallax.ErrNotSupported},
	{CodeUnavailable, parallax.ErrDaemonUnavailable},
	{CodeTimeout, parallax.ErrTimeout},
}

// String returns the code's name, for example "incompatible-type".
func (c Code) String() string {
	if c < codeEnd {
		return codeNames[c]
	}
	return fmt.Sprintf("code(%d)", uint16(c))
}

// Known reports whether c is a code this build defines.
func (c Code) Known() bool { return c < codeEnd }

// Sentinel returns the error value c stands for, or nil for [CodeOK],
// [CodeUnknown] and unknown codes.
func (c Code) Sentinel() error {
	for _, s := range codeSentinels {
		if s.code == c {
			return s.err
		}
	}
	return nil
}

// CodeOf returns the code for err: [CodeOK] for nil, the code of a
// [*RemoteError] in err's chain, the code of the first parallax sentinel err
// wraps (errors.Is), a few standard equivalents (os.ErrPermission,
// os.ErrNotExist, os.ErrInvalid, context.DeadlineExceeded), else
// [CodeUnknown].
func CodeOf(err error) Code {
	if err == nil {
		return CodeOK
	}
	var re *RemoteError
	if errors.As(err, &re) {
		return re.Code
	}
	for _, s := range codeSentinels {
		if errors.Is(err, s.err) {
			return s.code
		}
	}
	switch {
	case errors.Is(err, os.ErrPermission):
		return CodePermissionDenied
	case errors.Is(err, os.ErrNotExist):
		return CodeNotFound
	case errors.Is(err, os.ErrInvalid):
		return CodeInvalidArgument
	case errors.Is(err, context.DeadlineExceeded):
		return CodeTimeout
	}
	return CodeUnknown
}

// NewError builds the [Error] message that reports err to the peer. The
// message text is err.Error(), cut to [MaxTextLen] bytes.
func NewError(err error) *Error {
	msg := err.Error()
	if len(msg) > MaxTextLen {
		msg = msg[:MaxTextLen]
	}
	return &Error{Code: CodeOf(err), Message: msg}
}

// Err returns the error m reports, as a [*RemoteError].
func (m *Error) Err() error {
	return &RemoteError{Code: m.Code, Message: m.Message}
}

// RemoteError is an error the peer reported with an [Error] message. Unwrap
// returns the sentinel of its Code, so errors.Is(err,
// parallax.ErrTopicNotFound) holds on the receiving side for an error that
// wrapped it on the sending side.
type RemoteError struct {
	Code    Code
	Message string // the peer's err.Error()
}

// Error returns the peer's message, prefixed with "remote: ".
func (e *RemoteError) Error() string {
	if e.Message == "" {
		return "remote: " + e.Code.String()
	}
	return "remote: " + e.Message
}

// Unwrap returns the sentinel of e.Code (see [Code.Sentinel]).
func (e *RemoteError) Unwrap() error { return e.Code.Sentinel() }
