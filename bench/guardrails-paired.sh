#!/usr/bin/env bash
# bench/guardrails-paired.sh: what the guardrails cost in throughput, measured so that the
# machine's drift cancels. Two Redoubt servers run at the same time, pinned to the SAME core:
# one with every guardrail on as shipped, one with them off (guard-interval 0, guard-mrc no,
# admin-enabled no), both with the namespaces sessions and cache (evicting with
# allkeys-lfu, so its miss-ratio curve runs the LFU simulations). Two redis-benchmark
# clients, pinned together to the other core, drive them at once with the same load.
#
# The scheduler gives the two servers equal CPU time, so whichever costs more per request
# serves fewer requests per second, under the same conditions at the same moment: a slow
# spell of the host slows both. Reported per round: the throughput ratio on/off and the
# ratio of server CPU time per request (user + system, /proc) on/off; then the median and
# min-max over the rounds. Which server a round starts first alternates.
#
# Usage: bench/guardrails-paired.sh                     (2,000,000 requests per test, 7 rounds)
#        REQUESTS=300000 ROUNDS=2 bench/guardrails-paired.sh   (quick run)
# Environment: REQUESTS CLIENTS VALUE KEYSPACE ROUNDS PIPELINE GUARD_INTERVAL ON OFF NAMESPACES SERVER_CPU CLIENT_CPU REDOUBT_BIN OUT_DIR
# Output: a table on stdout; report.txt under bench/out/guardrails-paired-<timestamp>/.
set -euo pipefail

# shellcheck source-path=SCRIPTDIR source=lib/common.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib/common.sh"

REQUESTS=${REQUESTS:-2000000}
CLIENTS=${CLIENTS:-50}
VALUE=${VALUE:-64}
KEYSPACE=${KEYSPACE:-100000}
ROUNDS=${ROUNDS:-7}
PIPELINE=${PIPELINE:-16}
GUARD_INTERVAL=${GUARD_INTERVAL:-5}
OUT_DIR=${OUT_DIR:-$BENCH_DIR/out}

[[ $REQUESTS =~ ^[1-9][0-9]*$ ]] || die "REQUESTS must be a positive number"

bench_init
bench_check_tools redis-benchmark
RUN_DIR=$OUT_DIR/guardrails-paired-$(date +%Y%m%d-%H%M%S)
mkdir -p "$RUN_DIR/logs"
ln -sfn "$RUN_DIR" "$OUT_DIR/guardrails-paired-latest"

NAMESPACES=${NAMESPACES:-'sessions match sess:* reserve 1mb evict none; cache default evict allkeys-lfu'}
BASE_FLAGS=("${SERVER_FLAGS[@]}" --namespace "$NAMESPACES")
# ON / OFF (space-separated flags) replace a side's settings, to single out one component
read -r -a OFF_FLAGS <<<"${OFF:---guard-interval 0 --guard-mrc no --admin-enabled no}"
read -r -a ON_FLAGS <<<"${ON:---guard-interval $GUARD_INTERVAL --guard-mrc yes --admin-port 0}"
TICK_US=$((1000000 / $(getconf CLK_TCK)))

# cpu_ticks PID: the user and system clock ticks the process has used.
cpu_ticks() { awk '{ print $14 + $15 }' "/proc/$1/stat"; }
median() { printf '%s\n' "$@" | sort -g | awk '{ v[NR] = $1 } END { print v[int((NR + 1) / 2)] }'; }
spread() { printf '%.3f (%.3f-%.3f)' "$(median "$@")" "$(printf '%s\n' "$@" | sort -g | head -1)" "$(printf '%s\n' "$@" | sort -g | tail -1)"; }
# rps FILE TEST: requests per second of TEST from redis-benchmark --csv.
rps() { awk -F'"' -v t="$2" '$2 == t { print $4; exit }' "$1"; }

declare -A RATIO CPU_RATIO

# drive TEST ROUND: both clients at once; each server's CPU time is read when its own
# client finishes.
drive() {
  local t=$1 round=$2 v pid
  declare -A client start_ticks
  for v in "${ORDER[@]}"; do
    start_ticks[$v]=$(cpu_ticks "${PID[$v]}")
    taskset -c "$CLIENT_CPU" redis-benchmark -p "${PORT[$v]}" -t "${t,,}" -n "$REQUESTS" -r "$KEYSPACE" \
      -d "$VALUE" -c "$CLIENTS" -P "$PIPELINE" --csv >"$RUN_DIR/$v-$t-$round.csv" 2>/dev/null &
    client[$v]=$!
  done
  declare -A cpu
  for v in "${ORDER[@]}"; do
    wait "${client[$v]}"
    cpu[$v]=$(echo "($(cpu_ticks "${PID[$v]}") - ${start_ticks[$v]}) * $TICK_US / $REQUESTS" | bc -l)
  done
  RATIO[$t]+=" $(echo "$(rps "$RUN_DIR/on-$t-$round.csv" "$t") / $(rps "$RUN_DIR/off-$t-$round.csv" "$t")" | bc -l)"
  CPU_RATIO[$t]+=" $(echo "${cpu[on]} / ${cpu[off]}" | bc -l)"
  log "round $round $t: on $(rps "$RUN_DIR/on-$t-$round.csv" "$t")/s ${cpu[on]} us, off $(rps "$RUN_DIR/off-$t-$round.csv" "$t")/s ${cpu[off]} us"
}

warn_if_busy
declare -A PID PORT
for ((round = 1; round <= ROUNDS; round++)); do
  if ((round % 2)); then ORDER=(off on); else ORDER=(on off); fi
  wait_quiet
  for v in "${ORDER[@]}"; do
    if [[ $v == on ]]; then SERVER_FLAGS=("${BASE_FLAGS[@]}" "${ON_FLAGS[@]}"); else SERVER_FLAGS=("${BASE_FLAGS[@]}" "${OFF_FLAGS[@]}"); fi
    start_server redoubt "$RUN_DIR/logs/$v.log"
    PID[$v]=$SRV_PID
    PORT[$v]=$SRV_PORT
  done
  drive SET "$round"
  drive GET "$round"
  for v in "${ORDER[@]}"; do stop_server "${PID[$v]}"; done
done

{
  echo "guardrails cost, paired: both servers on CPU $SERVER_CPU at once, clients on CPU $CLIENT_CPU;"
  echo "redis-benchmark -n $REQUESTS -c $CLIENTS -d $VALUE -r $KEYSPACE -P $PIPELINE each; $ROUNDS rounds"
  echo "versions : $(versions)"
  echo "cpu      : $(cpu_model)"
  echo "on       : ${ON_FLAGS[*]}; off: ${OFF_FLAGS[*]}"
  printf '%-4s %28s %32s\n' test "throughput on/off" "CPU per request on/off"
  for t in SET GET; do
    # shellcheck disable=SC2086 # the values are a space-separated list
    printf '%-4s %28s %32s\n' "$t" "$(spread ${RATIO[$t]})" "$(spread ${CPU_RATIO[$t]})"
  done
} | tee "$RUN_DIR/report.txt"
