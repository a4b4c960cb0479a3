package parallax

import "errors"

// Cross-cutting errors. Packages wrap them with context; callers test with
// [errors.Is]. The router transports them over the control socket as codes,
// so errors.Is keeps working on the client side.
var (
	// ErrNotSupported reports that a kernel or host feature (hugepages,
	// memfd sealing, BPF, pidfd, ...) is not available here.
	ErrNotSupported = errors.New("not supported")
	// ErrDaemonUnavailable reports that no router serves the domain.
	ErrDaemonUnavailable = errors.New("router unavailable")
	// ErrProtocolVersion reports a control protocol version mismatch.
	ErrProtocolVersion = errors.New("protocol version mismatch")
	// ErrProtocol reports a malformed, unknown or oversized control message.
	ErrProtocol = errors.New("protocol error")
	// ErrPoolExhausted reports that no chunk of a fitting size class is free.
	ErrPoolExhausted = errors.New("pool exhausted")
	// ErrIncompatibleType reports a publisher and subscriber whose payload
	// types (name, size or alignment) differ.
	ErrIncompatibleType = errors.New("incompatible payload type")
	// ErrPermissionDenied reports that an access rule refused the request.
	ErrPermissionDenied = errors.New("permission denied")
	// ErrTopicNotFound reports an unknown topic.
	ErrTopicNotFound = errors.New("topic not found")
	// ErrInvalidRef reports a chunk reference that names no chunk: pool or
	// slot out of range, or a malformed encoding. It is returned for refs read
	// from shared memory, which a faulty or hostile peer may have written.
	ErrInvalidRef = errors.New("invalid chunk reference")
	// ErrStaleRef reports a chunk reference whose generation no longer
	// matches the chunk: it was released (and possibly reused) meanwhile.
	ErrStaleRef = errors.New("stale chunk reference")
	// ErrNotHeld reports a release of a chunk the caller does not hold.
	ErrNotHeld = errors.New("chunk not held")
	// ErrConcurrentUse reports that an object documented as not safe for
	// concurrent use was used from two goroutines at once.
	ErrConcurrentUse = errors.New("concurrent use")
	// ErrCorrupt reports shared memory whose layout (magic, version, sizes)
	// does not match what this build expects.
	ErrCorrupt = errors.New("corrupt shared memory layout")
	// ErrTimeout reports that a deadline passed before the operation could
	// complete.
	ErrTimeout = errors.New("timeout")
	// ErrInvalidArgument reports an argument that cannot be valid: a
	// malformed topic or domain name, an out-of-range option, an unknown
	// policy. Clients return it before asking the router; the router's
	// refusals of invalid requests match it too.
	ErrInvalidArgument = errors.New("invalid argument")
	// ErrLimit reports that a configured limit (topics, publishers,
	// subscribers, connections, segments) was reached.
	ErrLimit = errors.New("limit reached")
)
