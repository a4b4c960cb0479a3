package wire

import (
	"encoding/hex"
	"errors"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/parallax-ipc/parallax"
)

// lifecycleSamples holds the owned model's connection life cycle messages;
// samples() appends them (golden files, round trips, fuzz seeds).
func lifecycleSamples() []struct {
	name  string
	reqID uint32
	msg   Message
} {
	return []struct {
		name  string
		reqID uint32
		msg   Message
	}{
		{"connection_closing", 0, &ConnectionClosing{ConnID: 3, PubID: 9, SubID: 11, Reason: "subscriber closed"}},
		{"connection_removed_code", 0, &ConnectionRemoved{ConnID: 3, PubID: 9, SubID: 11, Reason: "process exited", Code: RemovedSubscriberGone}},
	}
}

// TestConnectionRemovedCodeCompat pins the compatibility decision: a
// ConnectionRemoved without a code encodes exactly as before codes existed
// (a four-element array), one with a code as a five-element array; the
// five-element form with a zero code is not canonical and refused.
func TestConnectionRemovedCodeCompat(t *testing.T) {
	t.Parallel()
	old := &ConnectionRemoved{ConnID: 3, PubID: 9, SubID: 11, Reason: "subscriber process 4243 exited"}
	b, err := Encode(0, old)
	require.NoError(t, err)
	// [33, 0, [3, 9, 11, "subscriber process 4243 exited"]]: the golden
	// connection_removed encoding of protocol version 2.
	require.Equal(t, "9321009403090bbe737562736372696265722070726f63657373203432343320657869746564", hex.EncodeToString(b))
	require.Equal(t, byte(0x94), b[3], "a ConnectionRemoved without a code is a four-element array")

	coded := *old
	coded.Code = RemovedPublisherGone
	cb, err := Encode(0, &coded)
	require.NoError(t, err)
	require.Equal(t, byte(0x95), cb[3], "a ConnectionRemoved with a code is a five-element array")
	require.Equal(t, append(append([]byte{}, b[:3]...), append([]byte{0x95}, append(b[4:], byte(RemovedPublisherGone))...)...), cb)
	env, err := Decode(cb)
	require.NoError(t, err)
	require.Equal(t, &coded, env.Msg)

	// Five elements with code 0: the same message as the four-element
	// form, so not canonical.
	zero := append(append([]byte{}, cb[:len(cb)-1]...), 0)
	_, err = Decode(zero)
	require.ErrorIs(t, err, parallax.ErrProtocol)
	require.ErrorContains(t, err, "non-canonical")

	// Three or six elements: refused.
	for _, n := range []byte{0x93, 0x96} {
		bad := append([]byte{}, cb...)
		bad[3] = n
		_, err = Decode(bad)
		require.ErrorIs(t, err, parallax.ErrProtocol, "array of %x", n)
	}
}

func TestLifecycleValidate(t *testing.T) {
	t.Parallel()
	for c := RemovedUnspecified; c <= RemovedCorrupt; c++ {
		require.NoError(t, (&ConnectionRemoved{ConnID: 1, Code: c}).Validate(), "code %v", c)
		require.NotContains(t, c.String(), "removed-code", "code %d has no name", c)
	}
	err := (&ConnectionRemoved{ConnID: 1, Code: RemovedCorrupt + 1}).Validate()
	require.ErrorIs(t, err, ErrInvalidArgument)
	require.ErrorContains(t, err, "ConnectionRemoved.Code 5 unknown")
	_, err = Encode(0, &ConnectionRemoved{ConnID: 1, Code: 200})
	require.ErrorIs(t, err, ErrInvalidArgument)

	// An unknown code that arrives on the wire is a protocol error.
	b, err := Encode(0, &ConnectionRemoved{ConnID: 1, Code: RemovedCorrupt})
	require.NoError(t, err)
	b[len(b)-1] = 9
	_, err = Decode(b)
	require.ErrorIs(t, err, parallax.ErrProtocol)
	require.ErrorIs(t, err, ErrInvalidArgument)

	require.ErrorIs(t, (&ConnectionClosing{}).Validate(), ErrInvalidArgument)
	require.ErrorIs(t, (&ConnectionClosing{ConnID: 1, Reason: string(make([]byte, MaxTextLen+1))}).Validate(), ErrInvalidArgument)
	require.True(t, TypeConnectionClosing.IsPush())
	require.Equal(t, "ConnectionClosing", TypeConnectionClosing.String())
	require.Zero(t, ExpectedFDs(&ConnectionClosing{ConnID: 1}))
	_, err = Encode(7, &ConnectionClosing{ConnID: 1})
	require.True(t, errors.Is(err, ErrInvalidArgument), "a push with a request id: %v", err)
}
