// Package wire defines the Parallax control protocol spoken between the
// router (parallax-roudi) and client runtimes over a unixpacket socket: every
// control message, the protocol [Version], the codec and the error [Code]s
// that carry parallax sentinels across the socket.
//
// # Framing
//
// One unixpacket datagram is one message of at most [MaxMessageSize] bytes.
// File descriptors (segment memfds) ride along with SCM_RIGHTS, in the order
// the message lists them (see [ExpectedFDs]).
//
// # Encoding
//
// A message is a msgpack array of three elements, the envelope:
//
//	[ type uint16, request id uint32, body ]
//
// The body is the message struct encoded as a msgpack array of its fields in
// declaration order (nested structs likewise), with integers in their
// smallest msgpack form. Decoding is strict: the type must be known, the body
// must have exactly the fields of its type with the right msgpack types, the
// encoding must be canonical (re-encoding the decoded value yields the same
// bytes) and nothing may follow the envelope. Every failure wraps
// [parallax.ErrProtocol]. Decoded messages are then checked with their
// Validate method.
//
// Request ids pair a request with its reply; the client picks them and the
// router echoes them. Pushes (router-initiated messages: [ConnectionAdded],
// [ConnectionRemoved], [SegmentGrant], [Shutdown]) carry request id 0.
//
// # Compatibility
//
// The golden encodings in testdata/*.golden pin the byte layout of every
// message; changing any of them requires bumping [Version]. The handshake
// ([Hello] → [Welcome]) negotiates the highest version both sides speak.
//
// # Errors
//
// A failed request is answered with an [Error] message holding a [Code] and a
// text. [CodeOf] maps an error to its code (via errors.Is on the parallax
// sentinels) on the sending side; on the receiving side [Error.Err] yields a
// [*RemoteError] whose Unwrap returns the matching sentinel, so
// errors.Is(err, parallax.ErrIncompatibleType) works after the trip over the
// socket.
package wire
