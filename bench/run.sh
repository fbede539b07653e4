#!/usr/bin/env bash
# The same SIPp load against Kamailio and sipbob, back to back, on loopback.
#
#   bench/run.sh                 load run: calls, REGISTERs, 486s (CPU time), memory (10k/100k)
#   bench/run.sh --cachegrind    instructions per forked call / 486 / registration (valgrind)
#   bench/run.sh --all           both
#   bench/run.sh --profile       sipbob only, under node --cpu-prof: where its time goes
#   bench/run.sh --callgrind     instructions per operation in a warmed-up window (callgrind
#                                counts only between two marks), and where they go
#
# Sizes and rates come from environment variables (see usage below and bench/README.md).
# Every process this script starts is stopped on exit (trap), every load is bounded in count
# and time, and nothing leaves 127.0.0.0/8.
set -euo pipefail

BENCH_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
REPO=$(cd "$BENCH_DIR/.." && pwd)
SCEN=$BENCH_DIR/scenarios

usage() {
  cat <<EOF
usage: bench/run.sh [--cachegrind | --all | --profile | --callgrind]
environment (defaults in brackets):
  TARGETS [kamailio sipbob]    which proxies, in this order
  CALLS [3000] CALL_RATE [100] forked calls to extension 300 (2 devices), calls/s
  WARMUP_CALLS [300]           forked calls before measuring (JIT, caches), not counted
  RING_MS [100] HOLD_MS [100]  answering device rings this long; caller holds the call
  BUSY_CALLS [3000] BUSY_RATE [200]   calls to busy extension 400, expected 486
  REGS [5000] REG_RATE [500]   registrations (REGISTER -> 401 -> REGISTER -> 200)
  MEM_STEPS [10000 100000]     registered devices at which memory is sampled
  MEM_RATE [2000] MEM_SIPPS [4]  total registration rate and SIPp processes for that push
  CG_N [500] CG_RATE [20]      --cachegrind: N per workload (runs with N and 2N), rate
  CG_PAD_S [computed]          --cachegrind: every run is padded to this many seconds
  CG_REPEATS [3]               --cachegrind: sipbob runs repeated, medians compared, spread shown
  CG_REPEATS_KAMAILIO [1]      --cachegrind: the same for Kamailio (its counts barely vary)
  CG_NODE_FLAGS [--single-threaded --no-memory-reducer --min-semi-space-size=16]  node flags for sipbob under valgrind (bench/README.md)
  SIPBOB_NODE_FLAGS []         load run: extra node flags for sipbob (e.g. --max-old-space-size=300)
  CG_WORKLOADS [fork busy reg] --cachegrind: which per-operation counts to measure
  CG_REG_USERS [2000]          --cachegrind: accounts in the config (small: fast start)
  PROXY_IP [127.0.0.1] PROXY_PORT [25060] HTTP_PORT [25080]
  KAM_CHILDREN [2] KAM_SHM_MB [512] KAM_PKG_MB [16]  Kamailio UDP workers, shared and
                               per-process memory (MB; only touched pages count)
  CGW_N [1000] CGW_WARMUP [3000] CGW_RATE [20] CGW_WARMUP_RATE [50] CGW_WORKLOADS [fork busy reg]
                               --callgrind: operations counted per workload (at CGW_RATE), after
                               that many uncounted ones (at CGW_WARMUP_RATE: nothing is
                               instrumented yet, so valgrind keeps up)
  CGW_SETTLE [500]             --callgrind: then that many more at CGW_RATE, instrumented (as slow
                               as the window) but not counted
  CGW_N_KAMAILIO [CGW_N]       --callgrind: N of Kamailio's N/2N runs (its counts do not drift, so
                               a smaller N than sipbob's window gives the same figure sooner)
  PROF_WORKLOADS [fork busy reg]  --profile: one sipbob run per workload (CALLS, BUSY_CALLS, REGS)
  SIPBOB_BUILD [head]          head: build the committed HEAD into bench/out/sipbob-<commit>/
                               (the shared tree's dist/ may be rebuilt in the middle of a run);
                               dist: use the tree's dist/ as it is (uncommitted work)
  SIPBOB_COMMIT [HEAD]         with SIPBOB_BUILD=head: the commit to build (an older one, to
                               measure it in the same windows)
  OUT [bench/out]              where logs and results go
EOF
}

MODE=load
for arg in "$@"; do
  case $arg in
    --cachegrind) MODE=cachegrind ;;
    --all) MODE=all ;;
    --profile) MODE=profile ;;
    --callgrind) MODE=callgrind ;;
    -h | --help) usage; exit 0 ;;
    *) usage >&2; exit 2 ;;
  esac
done

: "${TARGETS:=kamailio sipbob}"
: "${CALLS:=3000}" "${CALL_RATE:=100}" "${WARMUP_CALLS:=300}" "${RING_MS:=100}" "${HOLD_MS:=100}"
: "${BUSY_CALLS:=3000}" "${BUSY_RATE:=200}"
: "${REGS:=5000}" "${REG_RATE:=500}"
: "${MEM_STEPS:=10000 100000}" "${MEM_RATE:=2000}" "${MEM_SIPPS:=4}"
: "${CG_N:=500}" "${CG_RATE:=20}" "${CG_WORKLOADS:=fork busy reg}" "${CG_REG_USERS:=2000}"
: "${CG_REPEATS:=3}" "${CG_REPEATS_KAMAILIO:=1}" "${SIPBOB_NODE_FLAGS:=}"
# Valgrind runs one thread at a time, so V8's GC and compiler helper threads spend a random
# number of instructions spin-waiting for each other: run to run, node's count varied by
# ~4% (2e8 instructions) with them and ~0.3% without. --single-threaded does the same GC
# and compilation work on the main thread.
# --no-memory-reducer: under valgrind node runs many times slower, so V8 sees a few hundred bytes
# allocated per millisecond, takes the process for idle and runs memory-reducing full GCs
# (trace-gc: "Mark-Compact (reduce)" in the window). The same load at 10 calls/s without
# valgrind ran none (bench/README.md). Off, the window counts what a busy proxy does.
# --min-semi-space-size=16: the young generation a busy proxy has. At 100 calls/s without
# valgrind V8 grows it to 16 MB (a scavenge every ~200 calls); at valgrind's pace it sees a
# low allocation rate and keeps it at 1 MB, so the window paid a scavenge's fixed root work
# every ~12 calls (bench/README.md).
: "${CG_NODE_FLAGS=--single-threaded --no-memory-reducer --min-semi-space-size=16}"
: "${PROXY_IP:=127.0.0.1}" "${PROXY_PORT:=25060}" "${HTTP_PORT:=25080}"
: "${KAM_CHILDREN:=2}" "${KAM_SHM_MB:=512}" "${KAM_PKG_MB:=16}"
: "${KAMAILIO:=/usr/sbin/kamailio}" "${SIPP:=/usr/bin/sipp}" "${NODE:=node}" "${VALGRIND:=valgrind}"
: "${OUT:=$BENCH_DIR/out}"
: "${PROF_WORKLOADS:=fork busy reg}"
: "${SIPBOB_BUILD:=head}"
CG_TOOL=cachegrind
: "${CGW_N:=1000}" "${CGW_WARMUP:=3000}" "${CGW_RATE:=20}" "${CGW_WARMUP_RATE:=50}" "${CGW_WORKLOADS:=fork busy reg}"
: "${CGW_SETTLE:=500}"
NODE_EXTRA=() # extra node flags for sipbob (--profile)

DOMAIN=bench.sipbob.test
A_IP=127.0.0.51      # bench-a: answers after RING_MS
B_IP=127.0.0.52      # bench-b: rings until cancelled
C_IP=127.0.0.53      # bench-c: the one device of busy extension 400, answers at once
CALLER_IP=127.0.0.61 # the trusted trunk both proxies accept calls from without auth
REG_IP=127.0.0.70    # registration load; memory push uses 127.0.0.71..
CLK_TCK=$(getconf CLK_TCK)
mkdir -p "$OUT"
OUT=$(cd "$OUT" && pwd) # Kamailio gets absolute paths
RUN=$OUT/run-$(date +%Y%m%d-%H%M%S)
mkdir -p "$RUN"
METRICS=$RUN/metrics.tsv
: >"$METRICS"

log() { printf '%s %s\n' "$(date +%H:%M:%S)" "$*" >&2; }
die() { log "ERROR: $*"; exit 1; }

# ---------------------------------------------------------------- processes we started
PIDS=()
alive() { # a zombie is not alive
  local st
  st=$(cat "/proc/$1/stat" 2>/dev/null) || return 1
  st=${st##*) }
  [[ ${st%% *} != Z ]]
}
tree_pids() { # pid and all its descendants (Kamailio forks its workers)
  local c
  echo "$1"
  for c in $(pgrep -P "$1" 2>/dev/null || true); do tree_pids "$c"; done
}
stop_tree() { # pid grace_seconds: SIGTERM, wait, then SIGKILL whatever of the tree is left
  local pid=$1 grace=${2:-10} tree i
  alive "$pid" || { wait "$pid" 2>/dev/null || true; return 0; }
  tree=$(tree_pids "$pid")
  kill -TERM "$pid" 2>/dev/null || true
  for ((i = 0; i < grace * 10; i++)); do
    alive "$pid" || break
    sleep 0.1
  done
  for i in $tree; do alive "$i" && kill -KILL "$i" 2>/dev/null; done
  wait "$pid" 2>/dev/null || true
}
cleanup() {
  local pid
  for pid in "${PIDS[@]}"; do stop_tree "$pid" 3; done
}
trap cleanup EXIT
trap 'exit 130' INT TERM

start_bg() { # logfile cmd... -> LAST_PID
  local logf=$1
  shift
  "$@" >"$logf" 2>&1 &
  LAST_PID=$!
  PIDS+=("$LAST_PID")
}

# ---------------------------------------------------------------- measurements
cpu_ticks() { # "utime+stime utime" of the process tree (all threads), in clock ticks
  local t=0 u=0 p line
  for p in $(tree_pids "$1"); do
    line=$(cat "/proc/$p/stat" 2>/dev/null) || continue
    line=${line##*) }
    # after "pid (comm) ": field 12 = utime, 13 = stime
    read -r line < <(awk '{print $12 + $13, $12}' <<<"$line")
    t=$((t + ${line% *}))
    u=$((u + ${line#* }))
  done
  echo "$t $u"
}
mem_kb() { # "rss pss" in kB summed over the tree. PSS shares Kamailio's shm fairly among its
  # processes (the sum of VmRSS counts the shared memory once per process).
  local r=0 s=0 p v
  for p in $(tree_pids "$1"); do
    v=$(awk '/^VmRSS:/{print $2}' "/proc/$p/status" 2>/dev/null || true)
    r=$((r + ${v:-0}))
    v=$(awk '/^Pss:/{print $2}' "/proc/$p/smaps_rollup" 2>/dev/null || true)
    s=$((s + ${v:-0}))
  done
  echo "$r $s"
}
metric() { printf '%s\t%s\t%s\n' "$1" "$2" "$3" >>"$METRICS"; } # target key value

sipp_counts() { # stat CSV of -trace_stat -> "successful failed retransmissions" (cumulative)
  [[ -s $1 ]] || { echo "0 0 0"; return; }
  awk -F';' 'NR==1{for(i=1;i<=NF;i++){if($i=="SuccessfulCall(C)")s=i;if($i=="FailedCall(C)")f=i;if($i=="Retransmissions(C)")r=i}}
             {last=$0} END{split(last,a,";"); print a[s]+0, a[f]+0, a[r]+0}' "$1"
}

SIPP_COMMON=(-buff_size 4194304 -nostdin -key domain "$DOMAIN" -recv_timeout 10000)
run_sipp() { # name time_limit_s sipp-args... -> SIPP_RC SIPP_OK SIPP_FAIL SIPP_RETR (foreground, bounded)
  local name=$1 tmo=$2
  shift 2
  local stf=$RUN/$name.csv
  rm -f "$stf"
  SIPP_RC=0
  timeout --kill-after=5 "$tmo" "$SIPP" "$PROXY_IP:$PROXY_PORT" "$@" "${SIPP_COMMON[@]}" \
    -timeout "${tmo}s" -trace_stat -stf "$stf" -fd 1 -trace_err -error_file "$RUN/$name.err" \
    >"$RUN/$name.out" 2>&1 || SIPP_RC=$?
  # Retransmissions SIPp sent or saw: 0 on an idle loopback unless a message went unanswered
  # (overload) or a transaction was not matched (a bug on one side).
  read -r SIPP_OK SIPP_FAIL SIPP_RETR < <(sipp_counts "$stf")
}
bound() { # seconds for n at rate r, with slack for a slow machine
  echo $(($1 / $2 + 60))
}

# ---------------------------------------------------------------- the proxies
sipbob_build() { # -> SIPBOB_CLI, SIPBOB_REV: one fixed build for the whole run
  if [[ $SIPBOB_BUILD == dist ]]; then
    [[ -f $REPO/dist/src/cli.js ]] || die "sipbob is not built: run npm run build"
    SIPBOB_CLI=$REPO/dist/src/cli.js
    SIPBOB_REV="working tree dist/ ($(stat -c %y "$SIPBOB_CLI" | cut -d. -f1)), HEAD $(git -C "$REPO" log -1 --format='%h %s')"
    return
  fi
  local rev dir
  rev=$(git -C "$REPO" rev-parse --short=12 "${SIPBOB_COMMIT:-HEAD}")
  dir=$OUT/sipbob-$rev
  if [[ ! -f $dir/dist/src/cli.js ]]; then
    # git archive reads the commit only (no index, no lock); tsc and the runtime find
    # node_modules by walking up to the repository's.
    log "building sipbob $rev into ${dir#"$REPO"/}"
    rm -rf "$dir" && mkdir -p "$dir"
    git -C "$REPO" archive "$rev" package.json tsconfig.json src config | tar -x -C "$dir"
    "$REPO/node_modules/.bin/tsc" -p "$dir/tsconfig.json" >"$dir/build.log" 2>&1 ||
      die "building sipbob $rev failed; see $dir/build.log"
  fi
  SIPBOB_CLI=$dir/dist/src/cli.js
  SIPBOB_REV="$(git -C "$REPO" log -1 --format='%h %s' "$rev") (built in ${dir#"$REPO"/})"
}

gen_config() { # dir accounts
  [[ -s $1/sipbob.yaml && -s $1/users.csv && $(wc -l <"$1/users.csv") -eq $(($2 + 1)) ]] && return 0
  rm -rf "$1"
  BENCH_DOMAIN=$DOMAIN PROXY_IP=$PROXY_IP PROXY_PORT=$PROXY_PORT HTTP_PORT=$HTTP_PORT \
    CALLER_IP=$CALLER_IP "$NODE" "$BENCH_DIR/gen.mjs" "$1" "$2" >&2
}

reg_base() { # 10^width of the account numbers, as gen.mjs pads them (at least 5 digits)
  local w=${#1}
  ((w < 5)) && w=5
  printf '1%0*d' "$w" 0
}

target_cmd() { # target gen_dir accounts -> CMD array
  case $1 in
    kamailio)
      CMD=("$KAMAILIO" -f "$BENCH_DIR/kamailio.cfg" -x tlsf -DD -E -m "$KAM_SHM_MB" -M "$KAM_PKG_MB"
        -A "BENCH_REG_USERS=$3" -A "BENCH_REG_BASE=$(reg_base "$3")" -A "BENCH_PER_EXT=2"
        -A "BENCH_LISTEN=udp:$PROXY_IP:$PROXY_PORT"
        -A "BENCH_DOMAIN=\"$DOMAIN\"" -A "BENCH_TRUNK=\"$CALLER_IP\""
        -A "BENCH_CHILDREN=$KAM_CHILDREN") ;;
    sipbob)
      CMD=("$NODE" "${NODE_EXTRA[@]}" "$SIPBOB_CLI" --config "$2/sipbob.yaml") ;;
    *) die "unknown target $1" ;;
  esac
}

port_busy() { [[ -n $(ss -Hlun "sport = :$PROXY_PORT" 2>/dev/null) ]]; }

start_target() { # target gen_dir logname [cachegrind_out_dir] -> TPID
  local t=$1 gen=$2 name=$3 cg=${4:-} limit=60 i n last=-1 stable=0
  port_busy && die "UDP port $PROXY_PORT is already in use"
  target_cmd "$t" "$gen" "$(($(wc -l <"$gen/users.csv") - 1))"
  rm -rf "$gen/sipbob-data" && mkdir -p "$gen/sipbob-data" # fresh state every start
  if [[ -n $cg ]]; then
    mkdir -p "$cg"
    if [[ $CG_TOOL == callgrind ]]; then
      # Nothing is counted until cgw_window switches it on: start-up and warm-up stay out.
      CMD=("$VALGRIND" --tool=callgrind --instr-atstart=no --callgrind-out-file="$cg/cg.%p" "${CMD[@]}")
    else
      # --cache-sim=no: only instruction counts (I refs), several times faster.
      CMD=("$VALGRIND" --tool=cachegrind --cache-sim=no --cachegrind-out-file="$cg/cg.%p" "${CMD[@]}")
    fi
    limit=600 # node under valgrind takes about two minutes to start
  fi
  log "start $t${cg:+ under $CG_TOOL}: ${CMD[*]}"
  start_bg "$RUN/$name.log" "${CMD[@]}"
  TPID=$LAST_PID
  # Ready = SIP port bound, /healthz answers (sipbob), and no more processes being forked
  # for two seconds (Kamailio starts its workers after binding).
  for ((i = 0; i < limit * 2; i++)); do
    alive "$TPID" || die "$t exited during start; see $RUN/$name.log"
    if port_busy && { [[ $t != sipbob ]] || curl -fsS -m 2 "http://$PROXY_IP:$HTTP_PORT/healthz" >/dev/null 2>&1; }; then
      n=$(tree_pids "$TPID" | wc -l)
      if ((n == last)); then stable=$((stable + 1)); else stable=0; last=$n; fi
      ((stable >= 4)) && { log "$t ready (pid $TPID, $n processes)"; return 0; }
    fi
    sleep 0.5
  done
  die "$t not ready after ${limit}s; see $RUN/$name.log"
}

stop_target() { # valgrind needs time to write its output
  local grace=20
  [[ ${1:-} == cg ]] && grace=180
  stop_tree "$TPID" "$grace"
}

start_devices() { # target gen_dir: register bench-a/b/c from where their UAS will listen
  local t=$1 gen=$2 d ip
  for d in a:$A_IP b:$B_IP c:$C_IP; do
    ip=${d#*:}
    run_sipp "$t-reg-bench-${d%%:*}" 40 -sf "$SCEN/reg.xml" -inf "$gen/dev-bench-${d%%:*}.csv" \
      -key expires 3600 -i "$ip" -p 5060 -m 1
    [[ $SIPP_OK == 1 ]] || die "$t: registering bench-${d%%:*} failed; see $RUN/$t-reg-bench-${d%%:*}.*"
  done
  start_bg "$RUN/$t-uas-a.out" "$SIPP" -sf "$SCEN/uas-answer.xml" -i "$A_IP" -p 5060 -d "$RING_MS" \
    "${SIPP_COMMON[@]}" -trace_stat -stf "$RUN/$t-uas-a.csv" -fd 5 -trace_err -error_file "$RUN/$t-uas-a.err"
  UAS_PIDS=("$LAST_PID")
  start_bg "$RUN/$t-uas-b.out" "$SIPP" -sf "$SCEN/uas-ring.xml" -i "$B_IP" -p 5060 \
    "${SIPP_COMMON[@]}" -trace_stat -stf "$RUN/$t-uas-b.csv" -fd 5 -trace_err -error_file "$RUN/$t-uas-b.err"
  UAS_PIDS+=("$LAST_PID")
  start_bg "$RUN/$t-uas-c.out" "$SIPP" -sf "$SCEN/uas-answer.xml" -i "$C_IP" -p 5060 -d 0 \
    "${SIPP_COMMON[@]}" -trace_stat -stf "$RUN/$t-uas-c.csv" -fd 5 -trace_err -error_file "$RUN/$t-uas-c.err"
  UAS_PIDS+=("$LAST_PID")
  sleep 1
}

devices_alive() { # the UAS SIPps must live through a phase, or its failures are ours
  local p
  for p in "${UAS_PIDS[@]}"; do
    alive "$p" || { log "WARNING: device SIPp $p died (killed from outside?)"; return 1; }
  done
}

stop_devices() {
  local p
  for p in "${UAS_PIDS[@]}"; do stop_tree "$p" 3; done
  UAS_PIDS=()
}

fork_calls() { # target name n rate
  # -bye off: a call SIPp aborts (under valgrind a stalled proxy makes it retransmit a BYE,
  # and the second 200 is "unexpected") gets no extra BYE outside the dialog. That BYE's 404
  # is a path no warm-up takes: it deoptimized the proxy's hot functions, which were then
  # compiled again inside the callgrind window (bench/README.md).
  run_sipp "$1-$2" "$(bound "$3" "$4")" -sf "$SCEN/uac-call.xml" -s 300 -i "$CALLER_IP" -p 5060 \
    -d "$HOLD_MS" -m "$3" -r "$4" -default_behaviors all,-bye
}

hold_busy_call() { # target: an answered call to 400 that stays up, then wait for 486s
  local t=$1 i
  start_bg "$RUN/$t-hold.out" "$SIPP" "$PROXY_IP:$PROXY_PORT" -sf "$SCEN/uac-call.xml" -s 400 \
    -i "$CALLER_IP" -p 5061 -d 3600000 -m 1 "${SIPP_COMMON[@]}"
  HOLD_PID=$LAST_PID
  for ((i = 0; i < 20; i++)); do
    sleep 1
    run_sipp "$t-busy-probe" 30 -sf "$SCEN/uac-busy.xml" -s 400 -i "$CALLER_IP" -p 5060 -m 1
    [[ $SIPP_OK == 1 ]] && return 0
  done
  die "$t: extension 400 never became busy; see $RUN/$t-hold.out $RUN/$t-busy-probe.*"
}

busy_calls() { # target name n rate
  run_sipp "$1-$2" "$(bound "$3" "$4")" -sf "$SCEN/uac-busy.xml" -s 400 -i "$CALLER_IP" -p 5060 \
    -m "$3" -r "$4"
}

registrations() { # target name gen_dir first_user(1-based) n rate
  local csv=$RUN/$2-users.csv
  { echo SEQUENTIAL; sed -n "$(($4 + 1)),$(($4 + $5))p" "$3/users.csv"; } >"$csv"
  run_sipp "$1-$2" "$(bound "$5" "$6")" -sf "$SCEN/reg.xml" -inf "$csv" -key expires 3600 \
    -i "$REG_IP" -p 5060 -m "$5" -r "$6"
}

push_registrations() { # target gen_dir from(1-based) to: MEM_SIPPS parallel SIPps -> PUSH_OK
  local t=$1 gen=$2 from=$3 to=$4 k a b n pids=() csvs=() rate tmo ok fail retr
  n=$((to - from + 1))
  rate=$(((MEM_RATE + MEM_SIPPS - 1) / MEM_SIPPS))
  for ((k = 0; k < MEM_SIPPS; k++)); do
    a=$((from + n * k / MEM_SIPPS))
    b=$((from + n * (k + 1) / MEM_SIPPS - 1))
    ((b >= a)) || continue
    local csv=$RUN/$t-mem-$to-$k.csv.in stf=$RUN/$t-mem-$to-$k.csv
    { echo SEQUENTIAL; sed -n "$((a + 1)),$((b + 1))p" "$gen/users.csv"; } >"$csv"
    tmo=$(bound $((b - a + 1)) "$rate")
    start_bg "$RUN/$t-mem-$to-$k.out" timeout --kill-after=5 "$tmo" "$SIPP" "$PROXY_IP:$PROXY_PORT" \
      -sf "$SCEN/reg.xml" -inf "$csv" -key expires 3600 -i "127.0.0.$((71 + k))" -p 5060 \
      -m $((b - a + 1)) -r "$rate" "${SIPP_COMMON[@]}" -timeout "${tmo}s" \
      -trace_stat -stf "$stf" -fd 1
    pids+=("$LAST_PID")
    csvs+=("$stf")
  done
  for k in "${pids[@]}"; do wait "$k" || true; done
  PUSH_OK=0
  for k in "${csvs[@]}"; do
    read -r ok fail retr < <(sipp_counts "$k")
    PUSH_OK=$((PUSH_OK + ok))
  done
}

ms_per() { awk -v t="$1" -v n="$2" -v hz="$CLK_TCK" 'BEGIN{ if (n>0) printf "%.1f", t*1e6/hz/n; else print "n/a" }'; } # µs

# ---------------------------------------------------------------- load run, one target
load_target() {
  local t=$1 gen=$2 c0 c1 u0 u1 m reg from step
  [[ $t == sipbob ]] && NODE_EXTRA=($SIPBOB_NODE_FLAGS)
  start_target "$t" "$gen" "$t"
  NODE_EXTRA=()
  read -r m < <(mem_kb "$TPID" | awk '{print $2}')
  metric "$t" mem_start_kb "$m"
  start_devices "$t" "$gen"

  log "$t: warm-up $WARMUP_CALLS calls"
  fork_calls "$t" warmup "$WARMUP_CALLS" "$CALL_RATE"

  log "$t: (a) $CALLS forked calls at $CALL_RATE/s"
  read -r c0 u0 < <(cpu_ticks "$TPID")
  fork_calls "$t" fork "$CALLS" "$CALL_RATE"
  read -r c1 u1 < <(cpu_ticks "$TPID")
  metric "$t" fork_ok "$SIPP_OK/$CALLS"
  metric "$t" fork_cpu_us "$(ms_per $((c1 - c0)) "$CALLS")"
  metric "$t" fork_retrans "$SIPP_RETR"
  metric "$t" fork_user_us "$(ms_per $((u1 - u0)) "$CALLS")"
  devices_alive || metric "$t" fork_note "device SIPp died"
  log "$t: fork ok=$SIPP_OK failed=$SIPP_FAIL retrans=$SIPP_RETR rc=$SIPP_RC cpu=$((c1 - c0)) ticks (user $((u1 - u0)))"

  log "$t: (c) $BUSY_CALLS Busy-on-Busy calls at $BUSY_RATE/s"
  hold_busy_call "$t"
  read -r c0 u0 < <(cpu_ticks "$TPID")
  busy_calls "$t" busy "$BUSY_CALLS" "$BUSY_RATE"
  read -r c1 u1 < <(cpu_ticks "$TPID")
  metric "$t" busy_ok "$SIPP_OK/$BUSY_CALLS"
  metric "$t" busy_cpu_us "$(ms_per $((c1 - c0)) "$BUSY_CALLS")"
  metric "$t" busy_retrans "$SIPP_RETR"
  metric "$t" busy_user_us "$(ms_per $((u1 - u0)) "$BUSY_CALLS")"
  devices_alive || metric "$t" busy_note "device SIPp died"
  log "$t: busy ok=$SIPP_OK failed=$SIPP_FAIL retrans=$SIPP_RETR rc=$SIPP_RC cpu=$((c1 - c0)) ticks (user $((u1 - u0)))"
  stop_tree "$HOLD_PID" 3

  log "$t: (b) $REGS registrations at $REG_RATE/s"
  read -r c0 u0 < <(cpu_ticks "$TPID")
  registrations "$t" reg "$gen" 1 "$REGS" "$REG_RATE"
  read -r c1 u1 < <(cpu_ticks "$TPID")
  metric "$t" reg_ok "$SIPP_OK/$REGS"
  metric "$t" reg_cpu_us "$(ms_per $((c1 - c0)) "$REGS")"
  metric "$t" reg_retrans "$SIPP_RETR"
  metric "$t" reg_user_us "$(ms_per $((u1 - u0)) "$REGS")"
  log "$t: reg ok=$SIPP_OK failed=$SIPP_FAIL retrans=$SIPP_RETR rc=$SIPP_RC cpu=$((c1 - c0)) ticks (user $((u1 - u0)))"
  stop_devices

  # (d) memory: registered accounts so far are 1..REGS; push the rest step by step.
  reg=$SIPP_OK
  from=$((REGS + 1))
  for step in $MEM_STEPS; do
    if ((step >= from)); then
      log "$t: (d) registering accounts $from..$step at $MEM_RATE/s"
      push_registrations "$t" "$gen" "$from" "$step"
      reg=$((reg + PUSH_OK))
      from=$((step + 1))
    fi
    sleep 3 # let the last replies go out and timers settle before sampling
    read -r m < <(mem_kb "$TPID")
    metric "$t" "mem_${step}_kb" "${m#* }"
    metric "$t" "mem_${step}_rss_kb" "${m%% *}"
    metric "$t" "mem_${step}_ok" "$reg/$step"
    log "$t: $reg/$step registered, rss+pss kB: $m"
  done
  stop_target
}

# ---------------------------------------------------------------- cachegrind, one target
cg_irefs() { # sum of instruction counts over all cachegrind files of one run (all processes)
  awk '/^summary:/{s+=$2} END{printf "%.0f\n", s}' "$1"/cg.*
}

cg_run() { # target gen_dir label n_fork n_busy n_reg pad_s -> CG_IR, CG_VALID (1: all ok)
  local t=$1 gen=$2 label=$3 nf=$4 nb=$5 nr=$6 pad=$7 dir=$RUN/cg-$1-$3 t0 left
  CG_VALID=1
  rm -rf "$dir"
  start_target "$t" "$gen" "$t-cg-$label" "$dir"
  start_devices "$t-cg-$label" "$gen"
  t0=$SECONDS
  if ((nf > 0)); then
    fork_calls "$t-cg-$label" fork "$nf" "$CG_RATE"
    log "$t cg $label: fork ok=$SIPP_OK/$nf retrans=$SIPP_RETR"
    [[ $SIPP_OK == "$nf" ]] || { CG_VALID=0; log "WARNING: $t cg $label: $SIPP_FAIL forked calls failed"; }
  fi
  if ((nb > 0)); then
    hold_busy_call "$t-cg-$label"
    busy_calls "$t-cg-$label" busy "$nb" "$CG_RATE"
    log "$t cg $label: busy ok=$SIPP_OK/$nb retrans=$SIPP_RETR"
    [[ $SIPP_OK == "$nb" ]] || { CG_VALID=0; log "WARNING: $t cg $label: $SIPP_FAIL busy calls failed"; }
    stop_tree "$HOLD_PID" 3
  fi
  if ((nr > 0)); then
    registrations "$t-cg-$label" reg "$gen" 1 "$nr" "$CG_RATE"
    log "$t cg $label: reg ok=$SIPP_OK/$nr retrans=$SIPP_RETR"
    [[ $SIPP_OK == "$nr" ]] || { CG_VALID=0; log "WARNING: $t cg $label: $SIPP_FAIL registrations failed"; }
  fi
  # Every run lasts the same wall time, so what the process does while idle (timers, GC
  # and JIT work in the background) is the same in all runs and cancels in the difference.
  left=$((t0 + pad - SECONDS))
  if ((left > 0)); then
    log "$t cg $label: idle ${left}s to pad the run to ${pad}s"
    sleep "$left"
  else
    log "WARNING: $t cg $label: run took $((-left))s longer than the ${pad}s pad; raise CG_PAD_S"
  fi
  devices_alive || CG_VALID=0
  stop_devices
  stop_target cg
  CG_IR=$(cg_irefs "$dir")
  log "$t cg $label: I refs $CG_IR"
}

cg_run_valid() { # cg_run, once more if a call failed (the instruction count would be off)
  local try
  for try in 1 2; do
    cg_run "$@"
    ((CG_VALID)) && break
    if ((try == 1)); then
      log "WARNING: $1 cg $3: calls failed; repeating the run"
    else
      log "WARNING: $1 cg $3: calls failed again; the count is marked invalid"
    fi
  done
  metric "$1" "cg_${3}_ir" "$CG_IR"
  ((CG_VALID)) || metric "$1" "cg_${3}_invalid" 1
}

cg_median() { # target label repeats -> median I refs of the label's repetitions
  local r
  for ((r = 1; r <= $3; r++)); do val "$1" "cg_$2-${r}_ir"; done |
    sort -n | awk '{a[NR]=$1} END{ if (NR%2) print a[(NR+1)/2]; else printf "%.0f\n", (a[NR/2]+a[NR/2+1])/2 }'
}

cachegrind_target() {
  # Base run: N of every measured workload. Each further run doubles one workload, so its
  # difference to the base is N of that operation alone: startup, JIT warm-up, devices'
  # registrations and idle timers cancel out. With CG_REPEATS > 1 every run is repeated
  # (interleaved, so a slow drift hits all alike) and the medians are compared.
  local t=$1 gen=$2 w base nf nb nr pad v r k=0 lo hi reps=$CG_REPEATS
  local hf=0 hb=0 hr=0
  # Kamailio's counts repeat to within ~0.1% (plain C, no JIT, no GC); node's start-up
  # alone varies by ~2% of 5e9 instructions from run to run, hence the repetitions.
  [[ $t == kamailio ]] && reps=$CG_REPEATS_KAMAILIO
  for w in $CG_WORKLOADS; do
    case $w in fork) hf=$CG_N ;; busy) hb=$CG_N ;; reg) hr=$CG_N ;; *) die "CG_WORKLOADS: $w?" ;; esac
    k=$((k + 1))
  done
  # longest run: (k+1)*N operations at CG_RATE, plus set-up of each phase (busy probe, SIPp
  # exits); slow machines can raise CG_PAD_S.
  pad=${CG_PAD_S:-$(((k + 1) * CG_N / CG_RATE + 15 * k + 20))}
  [[ $t == sipbob ]] && NODE_EXTRA=($CG_NODE_FLAGS)
  for ((r = 1; r <= reps; r++)); do
    cg_run_valid "$t" "$gen" "base-$r" "$hf" "$hb" "$hr" "$pad"
    for w in $CG_WORKLOADS; do
      nf=$hf nb=$hb nr=$hr
      case $w in fork) nf=$((2 * hf)) ;; busy) nb=$((2 * hb)) ;; reg) nr=$((2 * hr)) ;; esac
      cg_run_valid "$t" "$gen" "$w-$r" "$nf" "$nb" "$nr" "$pad"
    done
  done
  NODE_EXTRA=()
  base=$(cg_median "$t" base "$reps")
  for w in $CG_WORKLOADS; do
    v=$(awk -v a="$(cg_median "$t" "$w" "$reps")" -v b="$base" -v n="$CG_N" 'BEGIN{printf "%.0f", (a-b)/n}')
    grep -q -P "^$t\tcg_(base|$w)-[0-9]+_invalid" "$METRICS" && v="$v (invalid: calls failed)"
    metric "$t" "ir_$w" "$v"
  done
  if ((reps > 1)); then
    # noise: spread of identical base runs, per operation
    read -r lo hi < <(for ((r = 1; r <= reps; r++)); do val "$t" "cg_base-${r}_ir"; done | sort -n | awk 'NR==1{l=$1} {h=$1} END{print l, h}')
    metric "$t" ir_noise "$(awk -v l="$lo" -v h="$hi" -v n="$CG_N" 'BEGIN{printf "%.0f", (h-l)/n}')"
  fi
}

# ---------------------------------------------------------------- callgrind window
# The N/2N differences of --cachegrind carry node's start-up noise (~1e8 instructions) into
# every figure. Here valgrind counts nothing until the workload is warmed up: callgrind's
# instrumentation is switched on for exactly N operations (callgrind_control, through the
# node process's vgdb channel), dumped, and switched off again. Everything the process does
# in that window counts (GC, timers, JIT), nothing before it. sipbob only: Kamailio's forked
# workers have no vgdb channel for callgrind_control. Its counts do not drift (plain C, no
# JIT, no GC: repeated runs agree to ~0.1 %), so for it the mode runs the N/2N --cachegrind
# measurement, in the same run and table.
cgw_ctl() { # callgrind_control args... for the target process
  callgrind_control "$@" "$TPID" >/dev/null 2>&1 || true
}
cgw_settle() { # cmd... : run cmd instrumented but not counted (cgw_window zeroes the counters)
  # Instrumented, node runs many times slower than in the warm-up: the odd retransmission and
  # late timer now happen, and the JIT re-optimizes for them. Here, not in the window.
  ((CGW_SETTLE > 0)) || return 0
  cgw_ctl -i on
  "$@"
}
cgw_window() { # target dir workload n cmd... : run cmd with the counters on, dump into dir/workload
  local t=$1 dir=$2 w=$3 n=$4 f ir
  shift 4
  cgw_ctl -z
  cgw_ctl -i on
  "$@"
  cgw_ctl -d "$w"
  cgw_ctl -i off
  mkdir -p "$dir/$w"
  sleep 1
  for f in "$dir"/cg.*.*; do [[ -e $f ]] && mv "$f" "$dir/$w/"; done
  ir=$(awk '/^totals:/{s+=$2} END{printf "%.0f\n", s}' "$dir/$w"/cg.*)
  metric "$t" "ir_$w" "$(awk -v a="$ir" -v n="$n" 'BEGIN{printf "%.0f", a/n}')"
  [[ $SIPP_OK == "$n" ]] || metric "$t" "ir_${w}_invalid" "$SIPP_OK/$n"
  log "$t callgrind $w: $ir instructions for $SIPP_OK/$n operations"
  callgrind_annotate --inclusive=no "$dir/$w"/cg.* 2>/dev/null | head -80 >"$RUN/callgrind-$t-$w.txt" || true
}
callgrind_target() { # sipbob only (see above)
  local t=$1 gen=$2 dir=$RUN/cgw-$1 w
  NODE_EXTRA=($CG_NODE_FLAGS)
  CG_TOOL=callgrind
  start_target "$t" "$gen" "$t-cgw" "$dir"
  CG_TOOL=cachegrind
  NODE_EXTRA=()
  start_devices "$t-cgw" "$gen"
  for w in $CGW_WORKLOADS; do
    case $w in
      fork)
        fork_calls "$t-cgw" fork-warmup "$CGW_WARMUP" "$CGW_WARMUP_RATE"
        cgw_settle fork_calls "$t-cgw" fork-settle "$CGW_SETTLE" "$CGW_RATE"
        cgw_window "$t" "$dir" fork "$CGW_N" fork_calls "$t-cgw" fork "$CGW_N" "$CGW_RATE" ;;
      busy)
        hold_busy_call "$t-cgw"
        busy_calls "$t-cgw" busy-warmup "$CGW_WARMUP" "$CGW_WARMUP_RATE"
        cgw_settle busy_calls "$t-cgw" busy-settle "$CGW_SETTLE" "$CGW_RATE"
        cgw_window "$t" "$dir" busy "$CGW_N" busy_calls "$t-cgw" busy "$CGW_N" "$CGW_RATE"
        stop_tree "$HOLD_PID" 3 ;;
      reg)
        registrations "$t-cgw" reg-warmup "$gen" 1 "$CGW_WARMUP" "$CGW_WARMUP_RATE"
        cgw_settle registrations "$t-cgw" reg-settle "$gen" $((CGW_WARMUP + 1)) "$CGW_SETTLE" "$CGW_RATE"
        cgw_window "$t" "$dir" reg "$CGW_N" registrations "$t-cgw" reg "$gen" $((CGW_WARMUP + CGW_SETTLE + 1)) "$CGW_N" "$CGW_RATE" ;;
      *) die "CGW_WORKLOADS: $w?" ;;
    esac
  done
  stop_devices
  stop_target cg
}

# ---------------------------------------------------------------- profile (sipbob only)
profile_sipbob() {
  local gen=$1 w
  for w in $PROF_WORKLOADS; do
    NODE_EXTRA=(--cpu-prof --cpu-prof-dir="$RUN/prof-$w")
    start_target sipbob "$gen" "sipbob-prof-$w"
    start_devices sipbob-prof-$w "$gen"
    case $w in
      fork)
        fork_calls sipbob-prof warmup "$WARMUP_CALLS" "$CALL_RATE"
        fork_calls sipbob-prof fork "$CALLS" "$CALL_RATE" ;;
      busy)
        hold_busy_call sipbob-prof
        busy_calls sipbob-prof busy "$BUSY_CALLS" "$BUSY_RATE"
        stop_tree "$HOLD_PID" 3 ;;
      reg) registrations sipbob-prof reg "$gen" 1 "$REGS" "$REG_RATE" ;;
      *) die "PROF_WORKLOADS: $w?" ;;
    esac
    log "sipbob profile $w: ok=$SIPP_OK failed=$SIPP_FAIL"
    stop_devices
    stop_target # SIGTERM: node writes the profile on its way out
    NODE_EXTRA=()
    "$NODE" "$BENCH_DIR/cpuprofile-top.mjs" "$RUN/prof-$w"/*.cpuprofile 30 | tee "$RUN/prof-$w.txt"
  done
}

# ---------------------------------------------------------------- report
val() { awk -F'\t' -v t="$1" -v k="$2" '$1==t && $2==k {v=$3} END{print v}' "$METRICS"; }
ratio() { # sipbob/kamailio for numbers, "-" otherwise
  awk -v s="$1" -v k="$2" 'BEGIN{ if (s ~ /^[0-9.]+$/ && k ~ /^[0-9.]+$/ && k+0 > 0) printf "%.2f", s/k; else print "-" }'
}
mb() { [[ -n $1 ]] && awk -v v="$1" 'BEGIN{printf "%.1f", v/1024}' || true; }

report() {
  local rows=() key label s k conv step
  rows+=("fork_ok|forked calls completed without failure (300: 2 devices)|")
  rows+=("fork_cpu_us|CPU per forked call, µs (utime+stime)|")
  rows+=("fork_user_us|  of which user space, µs|")
  rows+=("reg_ok|registrations completed|")
  rows+=("reg_cpu_us|CPU per registration (REGISTER, 401, REGISTER+auth, 200), µs|")
  rows+=("reg_user_us|  of which user space, µs|")
  rows+=("busy_ok|Busy-on-Busy calls answered 486|")
  rows+=("busy_cpu_us|CPU per Busy-on-Busy 486, µs|")
  rows+=("busy_user_us|  of which user space, µs|")
  rows+=("fork_retrans|SIPp retransmissions during the forked calls|")
  rows+=("busy_retrans|SIPp retransmissions during the 486 calls|")
  rows+=("reg_retrans|SIPp retransmissions during the registrations|")
  rows+=("mem_start_kb|memory after start, MB (PSS, all processes)|mb")
  for step in $MEM_STEPS; do
    rows+=("mem_${step}_ok|registered devices for the memory sample|")
    rows+=("mem_${step}_kb|memory with $step registered devices, MB (PSS)|mb")
    rows+=("mem_${step}_rss_kb|  same, sum of VmRSS, MB|mb")
  done
  rows+=("ir_fork|instructions per forked call (valgrind, user space)|")
  rows+=("ir_busy|instructions per Busy-on-Busy 486 (valgrind)|")
  rows+=("ir_reg|instructions per registration (valgrind)|")
  rows+=("ir_noise|  cachegrind noise: spread of the repeated base runs / N|")

  {
    echo "# sipbob vs Kamailio — bench/run.sh ${MODE}"
    echo
    echo "- date: $(date -u +%Y-%m-%dT%H:%M:%SZ); run dir: ${RUN#"$REPO"/}"
    echo "- machine: $(nproc) CPUs, $(awk -F': ' '/model name/{print $2; exit}' /proc/cpuinfo), $(awk '/MemTotal/{printf "%.0f GB", $2/1048576}' /proc/meminfo) RAM, kernel $(uname -r)"
    echo "- kamailio $("$KAMAILIO" -v 2>/dev/null | awk '/^version/{print $3; exit}') (-x tlsf, $KAM_CHILDREN UDP workers); node $("$NODE" -v); $("$SIPP" -v 2>/dev/null | awk '/SIPp/{print $1, $2; exit}'); $("$VALGRIND" --version 2>/dev/null)"
    echo "- sipbob: ${SIPBOB_REV:-not run}"
    echo "- load: CALLS=$CALLS@$CALL_RATE/s (+$WARMUP_CALLS warm-up), BUSY_CALLS=$BUSY_CALLS@$BUSY_RATE/s, REGS=$REGS@$REG_RATE/s, MEM_STEPS=$MEM_STEPS@$MEM_RATE/s; cachegrind: N=$CG_N@$CG_RATE/s ($CG_WORKLOADS); callgrind window: N=$CGW_N@$CGW_RATE/s after $CGW_WARMUP@$CGW_WARMUP_RATE/s and $CGW_SETTLE@$CGW_RATE/s instrumented, Kamailio N=${CGW_N_KAMAILIO:-$CGW_N}, sipbob runs x$CG_REPEATS with node $CG_NODE_FLAGS, kamailio runs x$CG_REPEATS_KAMAILIO"
    echo
    echo "| metric | sipbob | kamailio | ratio sipbob/kamailio |"
    echo "|---|---:|---:|---:|"
    for row in "${rows[@]}"; do
      IFS='|' read -r key label conv <<<"$row"
      s=$(val sipbob "$key")
      k=$(val kamailio "$key")
      [[ -z $s && -z $k ]] && continue
      if [[ $conv == mb ]]; then s=$(mb "$s"); k=$(mb "$k"); fi
      echo "| $label | ${s:-–} | ${k:-–} | $(ratio "$s" "$k") |"
    done
    for t in sipbob kamailio; do
      s=$(val "$t" ir_busy)
      k=$(val "$t" ir_fork)
      [[ -n $s && -n $k ]] && echo && echo "- $t: a 486 costs $(ratio "$s" "$k")x the instructions of a forked call."
    done
    echo
    echo "CPU times are from /proc/<pid>/stat of the proxy's whole process tree and swing with"
    echo "this shared machine's speed; compare the ratio, measured back to back in one run, and"
    echo "prefer the instruction counts. See bench/README.md for what each number means."
  } >"$RUN/results.md"
  cp "$RUN/results.md" "$OUT/results.md"
  cat "$RUN/results.md"
}

# ---------------------------------------------------------------- main
for bin in "$KAMAILIO" "$SIPP" curl ss; do command -v "$bin" >/dev/null || die "$bin not found"; done
[[ $MODE == callgrind ]] && { command -v callgrind_control >/dev/null || die "callgrind_control not found"; }
[[ $MODE == load ]] || command -v "$VALGRIND" >/dev/null || die "valgrind not found"
for step in $MEM_STEPS; do ((step <= 999999)) || die "MEM_STEPS: at most 999999"; done

UAS_PIDS=()
[[ " $TARGETS " == *" sipbob "* || $MODE == profile ]] && sipbob_build
max_users=$REGS
for step in $MEM_STEPS; do ((step > max_users)) && max_users=$step; done

if [[ $MODE == profile ]]; then
  GEN=$OUT/gen-$CG_REG_USERS
  gen_config "$GEN" "$CG_REG_USERS"
  profile_sipbob "$GEN"
  exit 0
fi
if [[ $MODE == callgrind ]]; then
  need=$((CGW_WARMUP + CGW_SETTLE + CGW_N)) # registration: one new account per operation
  ((need > CG_REG_USERS)) || need=$CG_REG_USERS
  GEN=$OUT/gen-$need
  gen_config "$GEN" "$need"
  for t in $TARGETS; do
    if [[ $t == sipbob ]]; then
      callgrind_target "$t" "$GEN"
    else
      CG_N=${CGW_N_KAMAILIO:-$CGW_N} CG_WORKLOADS=$CGW_WORKLOADS CG_RATE=$CGW_RATE cachegrind_target "$t" "$GEN"
    fi
  done
fi
if [[ $MODE == load || $MODE == all ]]; then
  GEN=$OUT/gen-$max_users
  gen_config "$GEN" "$max_users"
  for t in $TARGETS; do load_target "$t" "$GEN"; done
fi
if [[ $MODE == cachegrind || $MODE == all ]]; then
  users=$CG_REG_USERS
  ((CG_N * 2 > users)) && users=$((CG_N * 2))
  GEN=$OUT/gen-$users
  gen_config "$GEN" "$users"
  for t in $TARGETS; do cachegrind_target "$t" "$GEN"; done
fi
report
