package discovery

import (
	"errors"
	"os"
	"strconv"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/parallax-ipc/parallax"
	"github.com/parallax-ipc/parallax/internal/sys"
	"github.com/parallax-ipc/parallax/internal/wire"
)

func allMessages() []struct {
	id  uint32
	msg wire.Message
} {
	ti := wire.TypeInfo{Name: "Frame", Size: 64, Align: 8}
	return []struct {
		id  uint32
		msg wire.Message
	}{
		{1, &wire.Hello{Version: 1, MinVersion: 1, PID: 1, Name: "x"}},
		{1, &wire.Welcome{Version: 1, ClientID: 2, RouterPID: 3, Domain: "d", ResumeToken: resumeToken}},
		{2, &wire.Error{Code: wire.CodeLimit, Message: "too many"}},
		{3, &wire.Ack{}},
		{4, &wire.Ping{}},
		{4, &wire.Pong{}},
		{0, &wire.Shutdown{Reason: "bye"}},
		{5, &wire.CreatePublisher{Topic: "a/b", Type: ti, History: 1}},
		{5, &wire.PublisherCreated{PubID: 1}},
		{6, &wire.CreateSubscriber{Topic: "a/b", Type: ti, QueueCapacity: 8, Policy: wire.PolicyBlockProducer}},
		{6, &wire.SubscriberCreated{SubID: 2}},
		{7, &wire.ClosePublisher{PubID: 1}},
		{8, &wire.CloseSubscriber{SubID: 2}},
		{0, &wire.ConnectionAdded{ConnID: 1, PubID: 1, SubID: 2, Capacity: 8}},
		{0, &wire.ConnectionRemoved{ConnID: 1, PubID: 1, SubID: 2, Reason: "exit"}},
		{0, &wire.DataSegmentAdded{Seg: dataSeg}},
		{9, &wire.DataSegmentAdded{Seg: dataSeg}},
		{0, &wire.ConnSegmentAdded{Seg: connSeg}},
		{10, resumeWith(3)},
	}
}

// resumeWith returns a Resume handing back n connection segments: a
// message with n fds.
func resumeWith(n int) *wire.Resume {
	m := &wire.Resume{OldClient: 1, Token: resumeToken}
	for i := range n {
		seg := connSeg
		seg.ConnID = uint32(i + 1)
		m.ConnSegs = append(m.ConnSegs, wire.ResumeConnSeg{Seg: seg, Inode: uint64(100 + i)})
	}
	return m
}

func TestConnRoundTripEveryMessage(t *testing.T) {
	t.Parallel()
	cu, su := pair(t)
	client, server := NewConn(cu), NewConn(su)
	for _, c := range allMessages() {
		t.Run(c.msg.MessageType().String(), func(t *testing.T) {
			files := tempFiles(t, wire.ExpectedFDs(c.msg))
			require.NoError(t, client.Send(c.id, c.msg, files))
			env, got, err := server.Recv()
			require.NoError(t, err)
			defer closeFiles(got)
			require.Equal(t, c.id, env.ReqID)
			require.Equal(t, c.msg, env.Msg)
			requireSameFiles(t, files, got)
		})
	}
}

func TestConnSendChecksFDCount(t *testing.T) {
	t.Parallel()
	cu, _ := pair(t)
	err := NewConn(cu).Send(0, &wire.DataSegmentAdded{Seg: dataSeg}, nil)
	require.ErrorIs(t, err, wire.ErrInvalidArgument)
}

// TestRecvControlTruncated sends more fds than the receiver makes room for:
// the receiver gets an error, the fds that arrived are closed (TestMain's
// fd tripwire checks) and the socket stays usable.
func TestRecvControlTruncated(t *testing.T) {
	t.Parallel()
	cu, su := pair(t)
	client, server := NewConn(cu), NewConn(su)
	grant := resumeWith(4)
	require.NoError(t, client.Send(0, grant, tempFiles(t, 4)))
	buf := make([]byte, wire.MaxMessageSize)
	_, files, err := sys.RecvMsg(su, buf, 1)
	require.ErrorIs(t, err, sys.ErrControlTruncated)
	require.ErrorIs(t, err, ErrControlTruncated)
	require.Nil(t, files)

	require.NoError(t, client.Send(9, &wire.Ping{}, nil))
	env, _, err := server.Recv()
	require.NoError(t, err)
	require.Equal(t, uint32(9), env.ReqID)
}

func TestRecvRejectsBadDatagrams(t *testing.T) {
	t.Parallel()
	ping, err := wire.Encode(3, &wire.Ping{})
	require.NoError(t, err)
	cases := []struct {
		name  string
		data  []byte
		files int
		want  string
	}{
		{"oversized", make([]byte, wire.MaxMessageSize+100), 0, "exceeds"},
		{"garbage", []byte("GET / HTTP/1.1\r\n"), 0, "decode message"},
		{"garbage with fds", []byte{0xc1, 0xc1}, 2, "decode message"},
		{"unexpected fds", ping, 1, "fds attached"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			cu, su := pair(t)
			server := NewConn(su)
			require.NoError(t, sys.SendMsg(cu, c.data, tempFiles(t, c.files)))
			_, files, err := server.Recv()
			require.ErrorIs(t, err, parallax.ErrProtocol)
			require.Contains(t, err.Error(), c.want)
			require.Nil(t, files)

			// The next, valid message still arrives.
			require.NoError(t, sys.SendMsg(cu, ping, nil))
			env, _, err := server.Recv()
			require.NoError(t, err)
			require.Equal(t, wire.TypePing, env.Type())
		})
	}
}

func TestServerRepliesProtocolErrorToGarbage(t *testing.T) {
	t.Parallel()
	cu, su := pair(t)
	s, err := NewServerConn(su)
	require.NoError(t, err)
	require.NoError(t, sys.SendMsg(cu, []byte{0xde, 0xad}, nil))
	_, _, err = s.ReadHello(testCtx(t))
	require.ErrorIs(t, err, parallax.ErrProtocol)

	env, _, err := NewConn(cu).Recv()
	require.NoError(t, err)
	e := env.Msg.(*wire.Error)
	require.Equal(t, wire.CodeProtocol, e.Code)
	require.ErrorIs(t, e.Err(), parallax.ErrProtocol)
}

func TestPeerCred(t *testing.T) {
	t.Parallel()
	cu, su := pair(t)
	cred, err := PeerCred(su)
	require.NoError(t, err)
	require.Equal(t, int32(os.Getpid()), cred.PID)
	require.Equal(t, uint32(os.Getuid()), cred.UID)
	require.Equal(t, uint32(os.Getgid()), cred.GID)
	cred2, err := NewConn(cu).PeerCred()
	require.NoError(t, err)
	require.Equal(t, cred, cred2)

	pidfd, err := PeerPidfd(su)
	if errors.Is(err, parallax.ErrNotSupported) {
		t.Skipf("SO_PEERPIDFD: %v", err)
	}
	require.NoError(t, err)
	defer pidfd.Close()
	target, err := os.Readlink("/proc/self/fd/" + strconv.Itoa(int(pidfd.Fd())))
	require.NoError(t, err)
	require.Contains(t, target, "pidfd")
	status, err := os.ReadFile("/proc/self/fdinfo/" + strconv.Itoa(int(pidfd.Fd())))
	require.NoError(t, err)
	require.Contains(t, string(status), "Pid:\t"+strconv.Itoa(os.Getpid()))
}
