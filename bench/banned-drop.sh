#!/usr/bin/env bash
# What a datagram from a banned source costs sipbob (issue 12), against Node's own floor for
# receiving a datagram and doing nothing with it, in user-space instructions counted by
# callgrind in windows after a warm-up (as bench/udp-floor.sh and bench/run.mjs --callgrind).
# Each process gets an idle window and a window with N datagrams at RATE/s; the idle cost is
# scaled to the traffic window's length and subtracted.
#   bench/banned-drop.sh [N=20000] [RATE=2000]      (run `npm run build` first)
# ANSWERED=1: the sender is not banned (no flood limit it reaches), so each INVITE is parsed
# and answered with a stateless 407: what the ban saves per datagram.
set -euo pipefail
DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
REPO=$(cd "$DIR/.." && pwd)
N=${1:-20000}
RATE=${2:-2000}
IDLE_S=${IDLE_S:-5}
WARM=${WARM:-20000}
SRC=127.0.0.90
SINK_PORT=27996
SIP_PORT=27994
HTTP_PORT=27995
NODE_FLAGS=(--single-threaded --no-memory-reducer --min-semi-space-size=16)
OUT=$(mktemp -d)
PIDS=()
# KEEP=1 keeps the callgrind files (for callgrind_annotate) and logs in $OUT.
cleanup() {
  for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null || true; done
  for p in "${PIDS[@]}"; do wait "$p" 2>/dev/null || true; done
  if [[ ${KEEP:-0} == 1 ]]; then echo "kept: $OUT"; else rm -rf "$OUT"; fi
}
trap cleanup EXIT

now_ms() { date +%s%3N; }
ir() { awk '/^totals:/{s+=$2} END{print s+0}' "$1"; }

# window NAME PID COUNT_CMD: idle window, then the traffic window; prints the figures.
window() {
  local name=$1 pid=$2 count=$3
  node "$DIR/udp-floor/flood.mjs" "$WARM" 5000 "$4" "$SRC" # warm-up, not counted
  # Until the warm-up's backlog is worked off: the idle window must be idle.
  local before last=-1
  before=$($count)
  while [[ $before != "$last" ]]; do
    sleep 2
    last=$before
    before=$($count)
  done
  callgrind_control -i on "$pid" >/dev/null 2>&1
  local t0; t0=$(now_ms)
  sleep "$IDLE_S"
  callgrind_control -d "$pid" >/dev/null 2>&1
  local t1; t1=$(now_ms)
  node "$DIR/udp-floor/flood.mjs" "$N" "$RATE" "$4" "$SRC"
  sleep 0.5
  callgrind_control -d "$pid" >/dev/null 2>&1
  local t2; t2=$(now_ms)
  callgrind_control -i off "$pid" >/dev/null 2>&1
  sleep 1
  local after; after=$($count)
  local got=$((after - before))
  local idle traffic
  idle=$(ir "$(ls "$OUT"/"$name".*.1)")
  traffic=$(ir "$(ls "$OUT"/"$name".*.2)")
  awk -v n="$name" -v got="$got" -v sent="$N" -v idle="$idle" -v tr="$traffic" -v ti="$((t1 - t0))" -v tt="$((t2 - t1))" 'BEGIN {
    net = tr - idle * tt / ti
    printf "%-7s %d of %d datagrams in the window; window %d instructions (%.0f per datagram); idle %d in %d ms, scaled to %d ms: %.0f per datagram without it\n", n, got, sent, tr, tr / got, idle, ti, tt, net / got
  }'
}

# --- Node's floor: a dgram socket that counts and drops (SKIP_NODE=1: not measured).
if [[ ${SKIP_NODE:-0} != 1 ]]; then
valgrind --tool=callgrind --instr-atstart=no --callgrind-out-file="$OUT/node.%p" \
  node "${NODE_FLAGS[@]}" "$DIR/udp-floor/sink.mjs" "$SINK_PORT" >"$OUT/sink.log" 2>&1 &
PIDS+=($!)
SINK=$!
sleep 8
sink_count() { node -e "
const s=require('dgram').createSocket('udp4');s.on('message',m=>{console.log(String(m));process.exit(0)});
s.send('count?',$SINK_PORT,'127.0.0.1');setTimeout(()=>process.exit(1),5000)"; }
window node "$SINK" sink_count "$SINK_PORT"
fi

# --- sipbob with the sender banned (flood limit of one request an hour), or answered.
LIMIT=1
[[ ${ANSWERED:-0} == 1 ]] && LIMIT=1000000
cat >"$OUT/sipbob.yaml" <<YAML
domain: bench.sipbob.test
listen: [udp://127.0.0.1:$SIP_PORT]
http: { listen: 127.0.0.1:$HTTP_PORT, adminToken: bench-token }
storage: { path: $OUT/data }
security: { floodLimit: { requests: $LIMIT, seconds: 3600, ban: 3600 } }
log: { level: warn }
extensions:
  - { number: "200", name: Bench, devices: [{ username: bench-a, password: pw-bench-a-k9 }] }
YAML
valgrind --tool=callgrind --instr-atstart=no --callgrind-out-file="$OUT/sipbob.%p" \
  node "${NODE_FLAGS[@]}" "$REPO/dist/src/cli.js" --config "$OUT/sipbob.yaml" >"$OUT/sipbob.log" 2>&1 &
PIDS+=($!)
SIPBOB=$!
for _ in $(seq 60); do curl -fsS -m 2 "http://127.0.0.1:$HTTP_PORT/healthz" >/dev/null 2>&1 && break; sleep 1; done
node "$DIR/udp-floor/flood.mjs" 2 100 "$SIP_PORT" "$SRC" # the second request bans the sender
sipbob_count() {
  curl -fsS -m 10 -H 'authorization: Bearer bench-token' "http://127.0.0.1:$HTTP_PORT/metrics" |
    awk -v answered="${ANSWERED:-0}" '
      answered != 1 && /^sipbob_dropped_messages_total\{reason="flood"\}/ { print $2 }
      answered == 1 && /^sipbob_sip_messages_total\{direction="in",kind="INVITE"\}/ { print $2 }'
}
window sipbob "$SIPBOB" sipbob_count "$SIP_PORT"
echo "ban log lines: $(grep -c '"source address banned"' "$OUT/sipbob.log" || true)"
