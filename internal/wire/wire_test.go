package wire

import (
	"bytes"
	"encoding/hex"
	"errors"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
	"github.com/vmihailenco/msgpack/v5"

	"github.com/parallax-ipc/parallax"
	"github.com/parallax-ipc/parallax/internal/testutil"
)

var update = flag.Bool("update", false, "rewrite testdata/*.golden (only together with a Version bump)")

func TestMain(m *testing.M) {
	// Opening a file initialises the runtime's netpoller (an epoll fd and an
	// eventfd); do it before testutil.Main counts fds, or they read as a leak.
	_, _ = os.ReadFile("/proc/self/stat")
	testutil.Main(m)
}

// samples holds one populated instance of every message type, keyed by the
// golden file name. reqIDs are 0 for pushes.
func samples() []struct {
	name  string
	reqID uint32
	msg   Message
} {
	return append([]struct {
		name  string
		reqID uint32
		msg   Message
	}{
		{"hello", 1, &Hello{Version: 1, MinVersion: 1, PID: 4242, Name: "camera"}},
		{"welcome", 1, &Welcome{Version: 4, ClientID: 7, RouterPID: 100, Domain: "default", ResumeToken: bytes.Repeat([]byte{0x5a}, ResumeTokenSize)}},
		{"error", 2, &Error{Code: CodeIncompatibleType, Message: `create subscriber "frames": incompatible payload type`}},
		{"ack", 3, &Ack{}},
		{"ping", 4, &Ping{}},
		{"pong", 4, &Pong{}},
		{"shutdown", 0, &Shutdown{Reason: "SIGTERM"}},
		{"create_publisher", 5, &CreatePublisher{Topic: "camera/front.raw", Type: TypeInfo{Name: "image.Frame", Size: 1 << 21, Align: 64}, History: 2, MaxPayload: 4096, MaxLoans: 6, ExpectedSubscribers: 3}},
		{"publisher_created", 5, &PublisherCreated{PubID: 9}},
		{"create_subscriber", 6, &CreateSubscriber{Topic: "camera/front.raw", Type: TypeInfo{Name: "image.Frame", Size: 1 << 21, Align: 64}, QueueCapacity: 256, History: 1, Policy: PolicyBlockProducer, MaxHeld: 32}},
		{"create_request_publisher", 5, &CreatePublisher{Topic: "plan", Type: TypeInfo{Name: "Goal", Size: 64, Align: 8}, MaxLoans: 16, Kind: EndpointRequest}},
		{"create_response_subscriber", 6, &CreateSubscriber{Topic: "plan", Type: TypeInfo{Name: "Path", Size: 256, Align: 8}, QueueCapacity: 16, Policy: PolicyBlockProducer, MaxHeld: 16, Kind: EndpointResponse, Pair: 9}},
		{"subscriber_created", 6, &SubscriberCreated{SubID: 11}},
		{"close_publisher", 7, &ClosePublisher{PubID: 9}},
		{"release_connection", 7, &ReleaseConnection{ConnID: 12}},
		{"close_subscriber", 8, &CloseSubscriber{SubID: 11}},
		{"connection_added", 0, &ConnectionAdded{ConnID: 3, PubID: 9, SubID: 11, Capacity: 256, Policy: PolicyDiscardOldest, History: 1}},
		{"connection_added_pair", 0, &ConnectionAdded{ConnID: 4, PubID: 10, SubID: 12, Capacity: 16, Policy: PolicyBlockProducer, Pair: 9}},
		{"connection_removed", 0, &ConnectionRemoved{ConnID: 3, PubID: 9, SubID: 11, Reason: "subscriber process 4243 exited"}},
	}, append(append(append(append(introspectSamples(), reportSamples()...), resumeSamples()...), countersSamples()...), append(append(append(append(ownedSamples(), ownedGrowSamples()...), lifecycleSamples()...), watchSamples()...), memorySamples()...)...)...)
}

func TestSamplesCoverEveryType(t *testing.T) {
	t.Parallel()
	seen := map[Type]bool{}
	for _, s := range samples() {
		seen[s.msg.MessageType()] = true
	}
	for typ := range typeNames {
		require.True(t, seen[typ], "no sample (and no golden file) for %s", typ)
	}
}

func TestRoundTrip(t *testing.T) {
	t.Parallel()
	for _, s := range samples() {
		t.Run(s.name, func(t *testing.T) {
			t.Parallel()
			b, err := Encode(s.reqID, s.msg)
			require.NoError(t, err)
			env, err := Decode(b)
			require.NoError(t, err)
			require.Equal(t, s.reqID, env.ReqID)
			require.Equal(t, s.msg.MessageType(), env.Type())
			require.Equal(t, s.msg, env.Msg)
		})
	}
}

// TestGolden pins the encoding of every message. The golden files record the
// Version they were written with: changing an encoding without bumping
// Version fails here.
func TestGolden(t *testing.T) {
	t.Parallel()
	for _, s := range samples() {
		t.Run(s.name, func(t *testing.T) {
			t.Parallel()
			b, err := Encode(s.reqID, s.msg)
			require.NoError(t, err)
			path := filepath.Join("testdata", s.name+".golden")
			got := fmt.Sprintf("version %d\n%s\n", Version, hex.EncodeToString(b))
			if *update {
				require.NoError(t, os.WriteFile(path, []byte(got), 0o644))
				return
			}
			raw, err := os.ReadFile(path)
			require.NoError(t, err, "missing golden file; run: go test ./internal/wire -run TestGolden -update")
			ver, wantHex, ok := strings.Cut(strings.TrimSpace(string(raw)), "\n")
			require.True(t, ok, "%s: malformed golden file", path)
			gv, err := strconv.Atoi(strings.TrimPrefix(ver, "version "))
			require.NoError(t, err, "%s: malformed version line %q", path, ver)
			if uint16(gv) != Version {
				require.Failf(t, "golden files are stale",
					"%s records protocol version %d, wire.Version is %d: review the encoding changes, then run go test ./internal/wire -run TestGolden -update", path, gv, Version)
			}
			if hex.EncodeToString(b) != wantHex {
				require.Failf(t, "encoding changed without a Version bump",
					"%s: the encoding of %s differs from the golden one recorded for protocol version %d.\n got %x\nwant %s\nBump wire.Version, then run with -update.", path, s.msg.MessageType(), Version, b, wantHex)
			}
			want, err := hex.DecodeString(wantHex)
			require.NoError(t, err)
			env, err := Decode(want)
			require.NoError(t, err)
			require.Equal(t, s.msg, env.Msg)
		})
	}
}

func marshalRaw(t *testing.T, v ...any) []byte {
	t.Helper()
	b, err := msgpack.Marshal(v)
	require.NoError(t, err)
	return b
}

func TestDecodeRejects(t *testing.T) {
	t.Parallel()
	good, err := Encode(1, &ClosePublisher{PubID: 9})
	require.NoError(t, err)
	cases := []struct {
		name string
		in   []byte
		want string
	}{
		{"empty", nil, "empty datagram"},
		{"oversized", make([]byte, MaxMessageSize+1), "exceed"},
		{"not an array", []byte{0xa3, 'a', 'b', 'c'}, "3-element array"},
		{"two elements", marshalRaw(t, 20, 1)[0:0:0], "3-element array"},
		{"unknown type", marshalRaw(t, 999, 1, []any{}), "unknown message type 999"},
		{"reserved introspection type", marshalRaw(t, 127, 1, []any{}), "unknown message type 127"},
		{"removed ListPools", marshalRaw(t, 72, 1, []any{0}), "unknown message type 72: ListPools was removed"},
		{"removed PoolList", marshalRaw(t, 73, 1, []any{[]any{}, 0}), "unknown message type 73: PoolList was removed"},
		{"removed GrowPool", marshalRaw(t, 40, 1, []any{}), "unknown message type 40: GrowPool was removed"},
		{"trailing garbage", append(append([]byte{}, good...), 0x00), "trailing"},
		{"wrong field type", marshalRaw(t, uint16(TypeClosePublisher), 1, []any{"nine"}), "does not decode"},
		{"extra field", marshalRaw(t, uint16(TypeClosePublisher), 1, []any{9, 10}), "ClosePublisher"},
		{"missing field", marshalRaw(t, uint16(TypeCreatePublisher), 1, []any{"t"}), "CreatePublisher"},
		{"body as map", marshalRaw(t, uint16(TypeClosePublisher), 1, map[string]any{"PubID": 9}), "non-canonical"},
		{"overflowing int", marshalRaw(t, uint16(TypeHello), 1, []any{70000, 1, 1, "x"}), "non-canonical"},
		{"truncated", good[:len(good)-1], "truncated"},
		{"push with request id", mustEncodeUnchecked(t, 5, &Shutdown{Reason: "bye"}), "push with request id"},
		{"invalid topic", mustEncodeUnchecked(t, 1, &CreatePublisher{Topic: "bad topic!"}), "Topic"},
		{"unknown code", mustEncodeUnchecked(t, 1, &Error{Code: 999}), "Code"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			in := c.in
			if c.name == "two elements" {
				in = []byte{0x92, 0x14, 0x01}
			}
			_, err := Decode(in)
			require.Error(t, err)
			require.ErrorIs(t, err, parallax.ErrProtocol)
			require.Contains(t, err.Error(), c.want)
		})
	}
}

func mustEncodeUnchecked(t *testing.T, id uint32, m Message) []byte {
	t.Helper()
	b, err := encode(id, m)
	require.NoError(t, err)
	return b
}

func TestEncodeRejects(t *testing.T) {
	t.Parallel()
	long := strings.Repeat("a", MaxNameLen+1)
	cases := []struct {
		name  string
		reqID uint32
		msg   Message
	}{
		{"nil", 1, nil},
		{"empty topic", 1, &CreatePublisher{}},
		{"long topic", 1, &CreatePublisher{Topic: long}},
		{"topic with space", 1, &CreateSubscriber{Topic: "a b"}},
		{"long type name", 1, &CreatePublisher{Topic: "t", Type: TypeInfo{Name: long}}},
		{"bad align", 1, &CreatePublisher{Topic: "t", Type: TypeInfo{Align: 3}}},
		{"history", 1, &CreatePublisher{Topic: "t", History: MaxHistory + 1}},
		{"policy", 1, &CreateSubscriber{Topic: "t", Policy: 7}},
		{"publisher kind", 1, &CreatePublisher{Topic: "t", Kind: EndpointEvent + 1}},
		{"request publisher history", 1, &CreatePublisher{Topic: "t", Kind: EndpointRequest, History: 1}},
		{"subscriber kind", 1, &CreateSubscriber{Topic: "t", Kind: EndpointEvent + 1}},
		{"event subscriber with pair", 1, &CreateSubscriber{Topic: "t", Kind: EndpointEvent, Pair: 1}},
		{"response subscriber history", 1, &CreateSubscriber{Topic: "t", Kind: EndpointResponse, Pair: 1, History: 1}},
		{"response subscriber without pair", 1, &CreateSubscriber{Topic: "t", Kind: EndpointResponse}},
		{"pair on a request subscriber", 1, &CreateSubscriber{Topic: "t", Kind: EndpointRequest, Pair: 3}},
		{"queue", 1, &CreateSubscriber{Topic: "t", QueueCapacity: MaxQueueCapacity + 1}},
		{"max held", 1, &CreateSubscriber{Topic: "t", MaxHeld: MaxHeldLimit + 1}},
		{"max payload", 1, &CreatePublisher{Topic: "t", MaxPayload: MaxPayloadSize + 1}},
		{"max loans", 1, &CreatePublisher{Topic: "t", MaxLoans: MaxLoansLimit + 1}},
		{"expected subscribers", 1, &CreatePublisher{Topic: "t", ExpectedSubscribers: MaxExpectedSubs + 1}},
		{"welcome token", 1, &Welcome{Version: 4, Domain: "d", ResumeToken: make([]byte, ResumeTokenSize-1)}},
		{"hello min 0", 1, &Hello{Version: 1}},
		{"hello inverted", 1, &Hello{Version: 1, MinVersion: 2}},
		{"welcome bad domain", 1, &Welcome{Version: 1, Domain: "../etc"}},
		{"welcome version 0", 1, &Welcome{Domain: "d"}},
		{"welcome router pid", 1, &Welcome{Version: 4, Domain: "d", RouterPID: -1}},
		{"publisher created 0", 5, &PublisherCreated{}},
		{"subscriber created 0", 6, &SubscriberCreated{}},
		{"capacity 0", 0, &ConnectionAdded{ConnID: 1, PubID: 1, SubID: 1}},
		{"capacity", 0, &ConnectionAdded{ConnID: 1, PubID: 1, SubID: 1, Capacity: MaxQueueCapacity + 1}},
		{"connection id 0", 0, &ConnectionAdded{PubID: 1, SubID: 1, Capacity: 8}},
		{"connection publisher 0", 0, &ConnectionAdded{ConnID: 1, SubID: 1, Capacity: 8}},
		{"connection subscriber 0", 0, &ConnectionAdded{ConnID: 1, PubID: 1, Capacity: 8}},
		{"connection history", 0, &ConnectionAdded{ConnID: 1, PubID: 1, SubID: 1, Capacity: 8, History: MaxHistory + 1}},
		{"connection policy", 0, &ConnectionAdded{ConnID: 1, PubID: 1, SubID: 1, Capacity: 8, Policy: 9}},
		{"release connection 0", 1, &ReleaseConnection{}},
		{"push with id", 3, &Shutdown{}},
		{"long reason", 0, &Shutdown{Reason: strings.Repeat("x", MaxTextLen+1)}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			_, err := Encode(c.reqID, c.msg)
			require.ErrorIs(t, err, ErrInvalidArgument)
		})
	}
}

// TestLargestMessagesFit checks that every message at its field limits
// encodes within MaxMessageSize, so the size check in Encode only guards
// against future changes.
func TestLargestMessagesFit(t *testing.T) {
	t.Parallel()
	name := strings.Repeat("n", MaxNameLen)
	for _, m := range []Message{
		&Welcome{Version: 0xffff, ClientID: 0xffff, RouterPID: 1<<31 - 1, Domain: strings.Repeat("d", MaxDomainLen), ResumeToken: make([]byte, ResumeTokenSize)},
		&Error{Code: CodeTimeout, Message: strings.Repeat("e", MaxTextLen)},
		&CreateSubscriber{Topic: name, Type: TypeInfo{Name: name, Size: 1<<32 - 1, Align: MaxAlign}, QueueCapacity: MaxQueueCapacity, History: MaxHistory, Policy: PolicyBlockProducer},
	} {
		b, err := Encode(1<<32-1, m)
		require.NoError(t, err, "%s", m.MessageType())
		require.LessOrEqual(t, len(b), MaxMessageSize)
		t.Logf("largest %s: %d bytes", m.MessageType(), len(b))
	}
}

func TestValidateNames(t *testing.T) {
	t.Parallel()
	for _, ok := range []string{"a", "camera/front.raw", "A-b_c.9/x", strings.Repeat("z", MaxNameLen)} {
		require.NoError(t, ValidateTopic(ok), ok)
	}
	for _, bad := range []string{"", "a b", "ü", "x\x00", strings.Repeat("z", MaxNameLen+1)} {
		require.ErrorIs(t, ValidateTopic(bad), ErrInvalidArgument, bad)
	}
	for _, ok := range []string{"default", "lab-2", "a.b_c"} {
		require.NoError(t, ValidateDomain(ok), ok)
	}
	for _, bad := range []string{"", ".hidden", "..", "a/b", strings.Repeat("d", MaxDomainLen+1)} {
		require.ErrorIs(t, ValidateDomain(bad), ErrInvalidArgument, bad)
	}
}

func TestCodes(t *testing.T) {
	t.Parallel()
	for _, s := range codeSentinels {
		wrapped := fmt.Errorf("create subscriber %q: %w", "frames", s.err)
		require.Equal(t, s.code, CodeOf(wrapped), "%v", s.err)

		// Across the wire: encode the Error, decode it, and unwrap.
		b, err := Encode(1, NewError(wrapped))
		require.NoError(t, err)
		env, err := Decode(b)
		require.NoError(t, err)
		remote := env.Msg.(*Error).Err()
		require.ErrorIs(t, remote, s.err, "code %s", s.code)
		require.Equal(t, s.code, CodeOf(remote))
		require.Contains(t, remote.Error(), `create subscriber "frames"`)
		require.Equal(t, s.code.String(), codeNames[s.code])
	}
	require.Equal(t, CodeOK, CodeOf(nil))
	require.Equal(t, CodeUnknown, CodeOf(errors.New("boom")))
	require.Equal(t, CodePermissionDenied, CodeOf(os.ErrPermission))
	require.Equal(t, CodeNotFound, CodeOf(os.ErrNotExist))
	require.Nil(t, CodeUnknown.Sentinel())
	require.Equal(t, "code(999)", Code(999).String())
	require.False(t, Code(999).Known())

	// A protocol-version error must not be reported as a plain protocol error.
	require.Equal(t, CodeProtocolVersion, CodeOf(fmt.Errorf("x: %w", parallax.ErrProtocolVersion)))
	var re *RemoteError
	require.ErrorAs(t, fmt.Errorf("request: %w", (&Error{Code: CodeLimit, Message: "m"}).Err()), &re)
	require.Equal(t, CodeLimit, re.Code)
}

func TestTypeTables(t *testing.T) {
	t.Parallel()
	for typ := range typeNames {
		m := New(typ)
		require.NotNil(t, m, "%s", typ)
		require.Equal(t, typ, m.MessageType())
		require.True(t, typ.Known())
		if r, ok := ReplyType(typ); ok {
			require.True(t, r.Known())
			require.False(t, typ.IsPush())
		}
	}
	require.Nil(t, New(TypeIntrospectLast))
	require.Equal(t, "Type(127)", TypeIntrospectLast.String())
	require.Equal(t, 0, ExpectedFDs(&Welcome{}))
	require.Equal(t, 0, ExpectedFDs(&SubscriberCreated{SubID: 1}))
	require.Equal(t, 1, ExpectedFDs(&DataSegmentAdded{}))
	require.Equal(t, 1, ExpectedFDs(&ConnSegmentAdded{}))
	for _, gone := range []Type{34, 40, 41, 42, 43} { // the shared model's, reserved
		require.False(t, gone.Known(), "%s", gone)
		require.Nil(t, New(gone), "%s", gone)
	}
	require.Equal(t, 0, ExpectedFDs(&Ping{}))
}

func FuzzDecode(f *testing.F) {
	for _, s := range samples() {
		b, err := Encode(s.reqID, s.msg)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b)
	}
	f.Add([]byte{0x93, 0x10, 0x01, 0x93, 0xa1, 't', 0x93, 0xa0, 0, 0, 0})
	f.Add([]byte{})
	f.Fuzz(func(t *testing.T, b []byte) {
		env, err := Decode(b)
		if err != nil {
			if !errors.Is(err, parallax.ErrProtocol) {
				t.Fatalf("decode error does not wrap ErrProtocol: %v", err)
			}
			return
		}
		re, err := Encode(env.ReqID, env.Msg)
		if err != nil {
			t.Fatalf("accepted message does not re-encode: %v (%#v)", err, env.Msg)
		}
		env2, err := Decode(re)
		if err != nil {
			t.Fatalf("re-encoded message does not decode: %v", err)
		}
		require.Equal(t, env, env2)
	})
}

func BenchmarkCodec(b *testing.B) {
	for _, s := range samples() {
		if s.name != "create_subscriber" && s.name != "welcome" && s.name != "ack" {
			continue
		}
		b.Run("msg="+s.name, func(b *testing.B) {
			b.ReportAllocs()
			var size int
			for b.Loop() {
				buf, err := Encode(s.reqID, s.msg)
				if err != nil {
					b.Fatal(err)
				}
				if _, err := Decode(buf); err != nil {
					b.Fatal(err)
				}
				size = len(buf)
			}
			b.ReportMetric(float64(size), "bytes/msg")
		})
	}
}
