package shm_test

import (
	"testing"

	"github.com/parallax-ipc/parallax/internal/testutil"
)

func TestMain(m *testing.M) {
	testutil.ChildMain(map[string]func([]string) int{
		"stress-producer": stressProducerChild,
		"stress-consumer": stressConsumerChild,
		"bench-echo":      benchEchoChild,
		"bench-sink":      benchSinkChild,
		"bench-uds-echo":  benchUDSEchoChild,
		"bench-uds-sink":  benchUDSSinkChild,
		"owned-sink":      ownedSinkChild,
		"owned-idle":      ownedIdleChild,
		"owned-echo":      ownedEchoChild,
		"engine-echo":     engineEchoChild,
	})
	testutil.Main(m)
}
