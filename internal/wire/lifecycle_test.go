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

// TestConnectionRemovedEncoding pins version 4's encoding: a
// ConnectionRemoved is always a five-element array, also with
// RemovedUnspecified; version 3's four-element form (the shared model's,
// without a code) is refused.
func TestConnectionRemovedEncoding(t *testing.T) {
	t.Parallel()
	m := &ConnectionRemoved{ConnID: 3, PubID: 9, SubID: 11, Reason: "subscriber process 4243 exited"}
	b, err := Encode(0, m)
	require.NoError(t, err)
	require.Equal(t, byte(0x95), b[3], "a ConnectionRemoved is a five-element array")
	require.Equal(t, byte(RemovedUnspecified), b[len(b)-1])
	env, err := Decode(b)
	require.NoError(t, err)
	require.Equal(t, m, env.Msg)

	// [33, 0, [3, 9, 11, "subscriber process 4243 exited"]]: the
	// connection_removed encoding of protocol versions 2 and 3.
	v3, err := hex.DecodeString("9321009403090bbe737562736372696265722070726f63657373203432343320657869746564")
	require.NoError(t, err)
	_, err = Decode(v3)
	require.ErrorIs(t, err, parallax.ErrProtocol)

	// Three or six elements: refused.
	for _, n := range []byte{0x93, 0x96} {
		bad := append([]byte{}, b...)
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
