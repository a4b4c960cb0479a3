// Package shm holds the cross-package, multi-process tests and benchmarks of
// the shared-memory core: segment, mempool and ringbuf used together by
// separate processes, without a router. (Since issue 12 publishers and
// subscribers use dataseg and connection segments, not mempool; the
// owned_* tests below run that path, the others are the raw-ring baseline.)
//
// The package has no API; everything lives in its tests. A parent test lays
// out a management segment (notifiers, rings, a pool's management area) and
// a payload segment with [segment.NewMemfd], and re-executes the test binary
// as producer and consumer children that receive both memfds as extra fds
// (the consumer gets the payload read-only). It runs in plain
// `go test ./...` (no build tag):
//
//   - TestMultiProcess* stress loan → write → push → notify in producer
//     processes against pop → verify → release in a consumer
//     process, for both overflow policies, and prove that no reference is lost,
//     duplicated or torn and that the pool is entirely free afterwards.
//   - BenchmarkPingPong, BenchmarkThroughput and their *UDS twins measure a
//     two-process round trip and one-way throughput over the rings (futex
//     sleeping, default spin-then-sleep, busy polling) and over a Unix
//     domain socket carrying the same payload bytes, for comparison.
package shm
