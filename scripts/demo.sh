#!/usr/bin/env bash
# demo.sh — build the router and the multiproc example, run the pipeline
# producer → processor → consumer through a private router for a few seconds,
# print messages/s and end-to-end latency, stop everything by PID and check
# that nothing is left behind (processes, socket, shared-memory segments).
#
# Environment: GO (go), BIN (bin), DEMO_DURATION (3s), DEMO_SIZE (4096),
# DEMO_RATE (0 = as fast as the pipeline goes), DEMO_READY_TIMEOUT (10, s).
set -euo pipefail

GO=${GO:-go}
BIN=${BIN:-bin}
DURATION=${DEMO_DURATION:-3s}
SIZE=${DEMO_SIZE:-4096}
RATE=${DEMO_RATE:-0}
READY_TIMEOUT=${DEMO_READY_TIMEOUT:-10}

cd "$(dirname "$0")/.."

log() { printf 'demo: %s\n' "$*"; }
fail() { printf 'demo: FAIL: %s\n' "$*" >&2; exit 1; }

log "building $BIN/parallax-roudi and the examples"
mkdir -p "$BIN"
"$GO" build -o "$BIN/" ./cmd/parallax-roudi ./examples/multiproc/producer ./examples/multiproc/processor ./examples/multiproc/consumer

dir=$(mktemp -d "${TMPDIR:-/tmp}/parallax-demo.XXXXXX")
domain="demo-$$-$RANDOM"
sock="$dir/roudi.sock"
pids=()      # every process we started, stopped by PID on exit
roudi=""

# stop_pid PID: SIGTERM, wait up to 5 s, then SIGKILL. Only for our own PIDs.
stop_pid() {
	local pid=$1 i
	kill -0 "$pid" 2>/dev/null || return 0
	kill -TERM "$pid" 2>/dev/null || true
	for ((i = 0; i < 50; i++)); do
		kill -0 "$pid" 2>/dev/null || { wait "$pid" 2>/dev/null || true; return 0; }
		sleep 0.1
	done
	log "PID $pid ignored SIGTERM for 5 s; killing it"
	kill -KILL "$pid" 2>/dev/null || true
	wait "$pid" 2>/dev/null || true
}

cleanup() {
	local rc=$?
	trap - EXIT INT TERM
	local i
	# Clients first, newest (the producer) first, the router last, so it
	# can reclaim what they held.
	for ((i = ${#pids[@]} - 1; i >= 0; i--)); do
		[[ ${pids[i]} == "$roudi" ]] || stop_pid "${pids[i]}"
	done
	[[ -n $roudi ]] && stop_pid "$roudi"
	if ((rc != 0)) && [[ -f $dir/roudi.log ]]; then
		echo "--- router log ($dir/roudi.log) ---" >&2
		tail -n 30 "$dir/roudi.log" >&2 || true
	fi
	rm -rf "$dir"
	exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

log "starting parallax-roudi (domain $domain, socket $sock)"
"$BIN/parallax-roudi" -domain "$domain" -socket "$sock" -log-level info 2>"$dir/roudi.log" &
roudi=$!
pids+=("$roudi")

deadline=$((SECONDS + READY_TIMEOUT))
until grep -q 'msg="router ready"' "$dir/roudi.log" 2>/dev/null; do
	kill -0 "$roudi" 2>/dev/null || fail "parallax-roudi exited before it was ready"
	((SECONDS < deadline)) || fail "parallax-roudi not ready after ${READY_TIMEOUT}s"
	sleep 0.1
done
log "router ready (PID $roudi)"

# Consumer and processor wait for frames and stop 1 s after the last one;
# -duration bounds them in case the producer never gets going.
"$BIN/consumer" -socket "$sock" -duration 60s -size "$SIZE" >"$dir/consumer.out" 2>&1 &
consumer=$!
pids+=("$consumer")
"$BIN/processor" -socket "$sock" -duration 60s -size "$SIZE" >"$dir/processor.out" 2>&1 &
processor=$!
pids+=("$processor")

log "producing $SIZE-byte frames for $DURATION (rate ${RATE:-0}, 0 = flat out)"
# In the background and waited for, so a signal to this script is handled
# at once (bash defers traps while a foreground child runs).
"$BIN/producer" -socket "$sock" -duration "$DURATION" -size "$SIZE" -rate "$RATE" >"$dir/producer.out" 2>&1 &
producer=$!
pids+=("$producer")
prc=0; wait "$producer" || prc=$?
if ((prc != 0)); then
	cat "$dir/producer.out" >&2
	fail "producer exited $prc"
fi
crc=0; wait "$consumer" || crc=$?
src=0; wait "$processor" || src=$?
cat "$dir/producer.out" "$dir/processor.out" "$dir/consumer.out"
((src == 0)) || fail "processor exited $src"
((crc == 0)) || fail "consumer exited $crc"

log "stopping parallax-roudi (SIGTERM to PID $roudi)"
kill -TERM "$roudi"
rrc=0
deadline=$((SECONDS + 10))
while kill -0 "$roudi" 2>/dev/null; do
	((SECONDS < deadline)) || fail "parallax-roudi did not exit within 10 s of SIGTERM"
	sleep 0.1
done
wait "$roudi" || rrc=$?
((rrc == 0)) || fail "parallax-roudi exited $rrc"
grep -q 'msg="router stopped"' "$dir/roudi.log" || fail "parallax-roudi did not log a clean stop"

# Nothing left behind: our processes, the socket, mappings of our segments.
for p in "${pids[@]}"; do
	! kill -0 "$p" 2>/dev/null || fail "PID $p still running"
done
[[ ! -e $sock ]] || fail "socket $sock left behind"
if grep -ls "memfd:parallax-$domain" /proc/[0-9]*/maps 2>/dev/null | grep -q .; then
	fail "shared-memory segments of domain $domain still mapped"
fi
log "clean shutdown: router exited 0, socket removed, no process or segment left"
