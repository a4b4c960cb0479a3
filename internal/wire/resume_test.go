package wire

import (
	"bytes"
	"testing"

	"github.com/stretchr/testify/require"
)

func resumeSamples() []struct {
	name  string
	reqID uint32
	msg   Message
} {
	return []struct {
		name  string
		reqID uint32
		msg   Message
	}{
		{"resume", 40, &Resume{OldClient: 3, Token: bytes.Repeat([]byte{0xa5}, ResumeTokenSize),
			Publishers:  []ResumePublisher{{PubID: 9, Topic: "camera/front", Type: TypeInfo{Name: "Frame", Size: 64, Align: 8}, History: 2}},
			Subscribers: []ResumeSubscriber{{SubID: 11, Topic: "camera/back", QueueCapacity: 64, History: 1, Policy: PolicyBlockProducer}},
			Connections: []ResumeConnection{{ConnID: 4, PubID: 9, SubID: 12, Capacity: 64, Policy: PolicyDiscardOldest}}}},
		{"resume_owned", 41, &Resume{OldClient: 3, Token: bytes.Repeat([]byte{0xa5}, ResumeTokenSize),
			Publishers: []ResumePublisher{{PubID: 9, Topic: "camera/front", History: 2}},
			OwnedPubs: []ResumePubMemory{{PubID: 9, MaxLoans: 4, MaxPayload: 1500, Data: []ResumeDataSeg{{Inode: 5501, Seg: DataSegDesc{PubID: 9, Index: 0, Kind: KindMemfd,
				ChunkSize: 4096, Count: 300, PageSize: 4096, Size: 1 << 21}}}}},
			ConnSegs: []ResumeConnSeg{{Inode: 5502, Seg: ConnSegDesc{ConnID: 4, PubID: 9, SubID: 12, Capacity: 64, ReturnCapacity: 128,
				Bound: 80, MaxHeld: 16, Policy: PolicyBlockProducer, Size: 8192}}}}},
		{"resume_rpc", 42, &Resume{OldClient: 3, Token: bytes.Repeat([]byte{0xa5}, ResumeTokenSize),
			Publishers: []ResumePublisher{{PubID: 9, Topic: "plan", Kind: EndpointRequest}},
			Subscribers: []ResumeSubscriber{{SubID: 11, Topic: "plan", QueueCapacity: 64, Policy: PolicyBlockProducer,
				Kind: EndpointResponse, Pair: 9, MaxHeld: 80}}}},
		{"resumed", 40, &Resumed{ClientID: 3}},
	}
}

func TestResumeTypes(t *testing.T) {
	t.Parallel()
	rt, ok := ReplyType(TypeResume)
	require.True(t, ok)
	require.Equal(t, TypeResumed, rt)
	require.Equal(t, "Resume", TypeResume.String())
	require.IsType(t, &Resumed{}, New(TypeResumed))
	for _, s := range resumeSamples() {
		if r, ok := s.msg.(*Resume); ok {
			require.Equal(t, r.ResumeFds(), ExpectedFDs(r), s.name)
			require.Equal(t, map[string]int{"resume": 0, "resume_owned": 2, "resume_rpc": 0}[s.name], ExpectedFDs(r), s.name)
		}
	}
	for name, m := range map[string]Message{
		"client 0":      &Resume{},
		"pub id 0":      &Resume{OldClient: 1, Publishers: []ResumePublisher{{Topic: "a"}}},
		"bad topic":     &Resume{OldClient: 1, Subscribers: []ResumeSubscriber{{SubID: 1, Topic: "a b"}}},
		"bad capacity":  &Resume{OldClient: 1, Connections: []ResumeConnection{{ConnID: 1, PubID: 1, SubID: 1, Capacity: 3}}},
		"resumed 0":     &Resumed{},
		"owned ro":      &Resume{OldClient: 1, OwnedPubs: []ResumePubMemory{{PubID: 1, Data: []ResumeDataSeg{{Inode: 1, Seg: DataSegDesc{PubID: 1, ReadOnly: true, Kind: KindMemfd, ChunkSize: 64, Count: 1, PageSize: 4096, Size: 4096}}}}}},
		"owned other":   &Resume{OldClient: 1, OwnedPubs: []ResumePubMemory{{PubID: 1, Data: []ResumeDataSeg{{Inode: 1, Seg: DataSegDesc{PubID: 2, Kind: KindMemfd, ChunkSize: 64, Count: 1, PageSize: 4096, Size: 4096}}}}}},
		"owned payload": &Resume{OldClient: 1, OwnedPubs: []ResumePubMemory{{PubID: 1, MaxPayload: MaxPayloadSize + 1, Data: []ResumeDataSeg{{Inode: 1, Seg: DataSegDesc{PubID: 1, Kind: KindMemfd, ChunkSize: 64, Count: 1, PageSize: 4096, Size: 4096}}}}}},
		"owned inode":   &Resume{OldClient: 1, ConnSegs: []ResumeConnSeg{{Seg: ConnSegDesc{ConnID: 1, PubID: 1, SubID: 1, Capacity: 4, ReturnCapacity: 4, Bound: 4, Size: 4096}}}},
		"pub kind":      &Resume{OldClient: 1, Publishers: []ResumePublisher{{PubID: 1, Topic: "a", Kind: 9}}},
		"sub kind":      &Resume{OldClient: 1, Subscribers: []ResumeSubscriber{{SubID: 1, Topic: "a", Kind: 9}}},
		"no pair":       &Resume{OldClient: 1, Subscribers: []ResumeSubscriber{{SubID: 1, Topic: "a", Kind: EndpointResponse}}},
		"topic pair":    &Resume{OldClient: 1, Subscribers: []ResumeSubscriber{{SubID: 1, Topic: "a", Pair: 2}}},
		"max held":      &Resume{OldClient: 1, Subscribers: []ResumeSubscriber{{SubID: 1, Topic: "a", MaxHeld: MaxHeldLimit + 1}}},
		"policy":        &Resume{OldClient: 1, Connections: []ResumeConnection{{ConnID: 1, PubID: 1, SubID: 1, Capacity: 4, Policy: 9}}},
	} {
		require.ErrorIs(t, m.Validate(), ErrInvalidArgument, name)
	}
}
