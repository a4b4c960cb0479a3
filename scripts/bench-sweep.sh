#!/usr/bin/env bash
# bench-sweep.sh: the cross-process benchmark sweep behind README's
# "Current numbers" table. Run it on an otherwise idle machine from the
# repository root: scripts/bench-sweep.sh [output file]. It builds the
# tests/bench and tests/shm test binaries once and runs round trips, raw
# ring baselines, one way, Unix sockets, fan-out (3 runs, 10^6 messages), the grid, rpc
# and events, and the NATS gateway (3 runs at 1 KiB, 2 at 64 KiB).
set -u
out=${1:-bench-sweep.txt}
root=$(pwd)
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
go test -c -o "$tmp/bench.test" ./tests/bench || exit 1
go test -c -o "$tmp/shm.test" ./tests/shm || exit 1
bench() { (cd "$root/tests/bench" && "$tmp/bench.test" -test.run '^$' -test.bench "$1" -test.benchtime "$2"); }
shm() { (cd "$root/tests/shm" && "$tmp/shm.test" -test.run '^$' -test.bench "$1" -test.benchtime "$2"); }
{
	echo "# $(date -u) $(git rev-parse --short HEAD)"
	uptime
	bench 'RoundTrip$/mode=(blocking|spin-then-block|busy-poll)/payload=(64|4096|1048576)$' 3000x
	shm '^BenchmarkPingPong$/mode=(futex|busypoll)/payload=(64|4096)$' 3000x
	shm '^BenchmarkThroughput$/mode=default/payload=(64|4096)$' 1000000x
	bench '^BenchmarkOneWay$/payload=(64|4096)/coalesce=0s$' 1000000x
	bench 'RoundTripUDS' 3000x
	# 10^6 messages: at 2*10^5 a run's CPU time is a few 10 ms kernel
	# ticks, and cpu-ns per delivered message is quantized by them.
	for _ in 1 2 3; do uptime; bench 'FanOut/' 1000000x; done
	bench 'Grid' 1000000x
	bench 'RPCRoundTrip|SignalWake' 1000x
	for _ in 1 2 3; do uptime; bench 'Gateway/payload=1024/load=flat/path=(nats|bridge-block)$' 200000x; done
	for _ in 1 2; do uptime; bench 'Gateway/payload=65536/load=flat/path=(nats|bridge-block)$' 20000x; done
	uptime
} 2>&1 | grep -vE '^(goos|goarch|pkg|cpu):' >"$out"
echo "bench-sweep: wrote $out"
