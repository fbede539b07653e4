#!/usr/bin/env bash
# Node's floor per UDP datagram (receive + send back), in user-space instructions, counted by
# callgrind in a window after a warm-up, as bench/run.mjs --callgrind counts sipbob.
#   bench/udp-floor.sh [N=5000] [RATE=500]
set -euo pipefail
DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
N=${1:-5000}
RATE=${2:-500}
PORT=27999
OUT=$(mktemp -d)
trap 'kill "$PID" 2>/dev/null || true; rm -rf "$OUT"' EXIT
valgrind --tool=callgrind --instr-atstart=no --callgrind-out-file="$OUT/cg.%p" \
  node --single-threaded "$DIR/udp-floor/echo.mjs" "$PORT" >"$OUT/echo.log" 2>&1 &
PID=$!
sleep 8
node "$DIR/udp-floor/send.mjs" "$N" 1000 "$PORT" >/dev/null # warm-up, not counted
callgrind_control -i on "$PID" >/dev/null 2>&1
GOT=$(node "$DIR/udp-floor/send.mjs" "$N" "$RATE" "$PORT")
callgrind_control -d "$PID" >/dev/null 2>&1
sleep 1
IR=$(awk '/^totals:/{s+=$2} END{print s}' "$OUT"/cg.*.1)
ECHOED=${GOT#echoed }
ECHOED=${ECHOED%% *}
echo "$GOT; $IR instructions; $((IR / ECHOED)) per datagram echoed (received + sent)"
