#!/usr/bin/env bash
# bench/guardrails.sh: what the guardrails cost. Redoubt with every guardrail on as shipped
# (samples every 5 s, miss-ratio curves recorded on every read, the growth finder's census,
# the admin listener; GUARD_INTERVAL=1 samples every second instead) against the same
# binary with them off (guard-interval 0, guard-mrc no, admin-enabled no), with
# redis-server for reference.
# Both Redoubt runs have the same namespaces (sessions, cache evicting with allkeys-lfu),
# so per-namespace curves are exercised too: the keyspace's by LRU stack distances, the
# cache's by miniature simulations of LFU.
#
# For each round and pipeline depth: each server fresh (pinned to SERVER_CPU), then
# redis-benchmark -t set,get (pinned to CLIENT_CPU), CLIENTS clients, random keys of a
# KEYSPACE-key space, VALUE-byte values; SET fills the keyspace, so GET mostly hits.
# Servers alternate, ROUNDS times; the table shows medians, and the on/off ratio is the
# median (and min-max) of each round's ratio, so drift of the machine between rounds cancels.
# Beside throughput, the server's CPU time per request (user + system, from /proc, around
# each test) and its on/off ratio per round: the cost in CPU, which moves less than
# throughput on a shared machine (it leaves out the time the server waits for the client).
#
# Usage: bench/guardrails.sh                       (500,000 requests per test, 5 rounds)
#        REQUESTS=100000 ROUNDS=1 bench/guardrails.sh   (quick run)
# Environment: REQUESTS CLIENTS VALUE KEYSPACE ROUNDS PIPELINES GUARD_INTERVAL SERVER_CPU CLIENT_CPU REDIS_BIN REDOUBT_BIN OUT_DIR
# Output: a table on stdout; report.txt under bench/out/guardrails-<timestamp>/.
set -euo pipefail

# shellcheck source-path=SCRIPTDIR source=lib/common.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib/common.sh"

REQUESTS=${REQUESTS:-500000}
CLIENTS=${CLIENTS:-50}
VALUE=${VALUE:-64}
KEYSPACE=${KEYSPACE:-100000}
ROUNDS=${ROUNDS:-5}
PIPELINES=${PIPELINES:-"1 16"}
GUARD_INTERVAL=${GUARD_INTERVAL:-5}
OUT_DIR=${OUT_DIR:-$BENCH_DIR/out}

[[ $REQUESTS =~ ^[1-9][0-9]*$ ]] || die "REQUESTS must be a positive number"

bench_init
bench_check_tools redis-benchmark
RUN_DIR=$OUT_DIR/guardrails-$(date +%Y%m%d-%H%M%S)
mkdir -p "$RUN_DIR/logs"
ln -sfn "$RUN_DIR" "$OUT_DIR/guardrails-latest"

declare -A R CPU
BASE_FLAGS=("${SERVER_FLAGS[@]}")
NAMESPACES='sessions match sess:* reserve 1mb evict none; cache default evict allkeys-lfu'

median() { printf '%s\n' "$@" | sort -g | awk '{ v[NR] = $1 } END { print v[int((NR + 1) / 2)] }'; }

# rps FILE TEST: requests per second of TEST (SET or GET) from redis-benchmark --csv.
rps() { awk -F'"' -v t="$2" '$2 == t { print $4; exit }' "$1"; }

# cpu_ticks PID: the user and system clock ticks the process has used (/proc/PID/stat).
cpu_ticks() { awk '{ print $14 + $15 }' "/proc/$1/stat"; }
TICK_US=$((1000000 / $(getconf CLK_TCK)))

measure() {
  local variant=$1 pipeline=$2 round=$3 kind=redoubt out=$RUN_DIR/$1-P$2-$3.csv
  case $variant in
    redis) kind=redis; SERVER_FLAGS=("${BASE_FLAGS[@]}") ;;
    off) SERVER_FLAGS=("${BASE_FLAGS[@]}" --namespace "$NAMESPACES" --guard-interval 0 --guard-mrc no --admin-enabled no) ;;
    on) SERVER_FLAGS=("${BASE_FLAGS[@]}" --namespace "$NAMESPACES" --guard-interval "$GUARD_INTERVAL" --guard-mrc yes --admin-port 0) ;;
  esac
  wait_quiet
  start_server "$kind" "$RUN_DIR/logs/$variant.log"
  log "$variant, -P $pipeline, round $round: pid $SRV_PID, port $SRV_PORT"
  # SET fills the keyspace, then GET reads it; the server's CPU time is read around each
  local t before
  : >"$out"
  for t in SET GET; do
    before=$(cpu_ticks "$SRV_PID")
    taskset -c "$CLIENT_CPU" redis-benchmark -p "$SRV_PORT" -t "${t,,}" -n "$REQUESTS" -r "$KEYSPACE" -d "$VALUE" \
      -c "$CLIENTS" -P "$pipeline" --csv 2>/dev/null | grep -v '^"test"' >>"$out"
    CPU[$variant:$pipeline:$round:$t]=$(echo "($(cpu_ticks "$SRV_PID") - $before) * $TICK_US / $REQUESTS" | bc -l)
    R[$variant:$pipeline:$t]+=" $(rps "$out" "$t")"
    R[cpu:$variant:$pipeline:$t]+=" ${CPU[$variant:$pipeline:$round:$t]}"
  done
  if [[ $variant == on ]]; then
    for t in SET GET; do
      R[ratio:$pipeline:$t]+=" $(echo "$(rps "$out" "$t") / $(rps "$RUN_DIR/off-P$pipeline-$round.csv" "$t")" | bc -l)"
      R[cpuratio:$pipeline:$t]+=" $(echo "${CPU[on:$pipeline:$round:$t]} / ${CPU[off:$pipeline:$round:$t]}" | bc -l)"
    done
  fi
  if [[ $variant == on ]]; then
    R[on:$pipeline:samples]=$(info_field "$SRV_PORT" forecast guard_samples)
  fi
  stop_server "$SRV_PID"
}

warn_if_busy
for ((round = 1; round <= ROUNDS; round++)); do
  for pipeline in $PIPELINES; do
    for variant in off on redis; do measure "$variant" "$pipeline" "$round"; done
  done
done
for key in "${!R[@]}"; do
  if [[ $key == ratio:* || $key == cpuratio:* ]]; then
    # shellcheck disable=SC2086 # the values are a space-separated list
    R[$key]="$(printf '%.3f (%.3f-%.3f)' "$(median ${R[$key]})" "$(printf '%s\n' ${R[$key]} | sort -g | head -1)" "$(printf '%s\n' ${R[$key]} | sort -g | tail -1)")"
  elif [[ $key != *:samples ]]; then
    # shellcheck disable=SC2086
    R[$key]=$(median ${R[$key]})
  fi
done

{
  echo "guardrails cost: redis-benchmark -t set,get -n $REQUESTS -c $CLIENTS -d $VALUE -r $KEYSPACE; medians of $ROUNDS rounds"
  echo "versions : $(versions)"
  echo "cpu      : $(cpu_model); server on CPU $SERVER_CPU, client on CPU $CLIENT_CPU"
  echo "on       : guard-interval $GUARD_INTERVAL, guard-mrc yes, admin listener on; off: guard-interval 0, guard-mrc no, admin-enabled no"
  printf '%-4s %-5s %14s %14s %14s %24s %12s %24s\n' test "-P" "redis ops/s" "off ops/s" "on ops/s" \
    "on/off per round" "on/redis" "CPU on/off per round"
  for pipeline in $PIPELINES; do
    for t in SET GET; do
      printf '%-4s %-5s %14s %14s %14s %24s %12.3f %24s\n' "$t" "$pipeline" "${R[redis:$pipeline:$t]}" \
        "${R[off:$pipeline:$t]}" "${R[on:$pipeline:$t]}" "${R[ratio:$pipeline:$t]}" \
        "$(echo "${R[on:$pipeline:$t]} / ${R[redis:$pipeline:$t]}" | bc -l)" "${R[cpuratio:$pipeline:$t]}"
    done
    printf '     server CPU per request (median, µs): redis %.3f/%.3f, off %.3f/%.3f, on %.3f/%.3f (SET/GET)\n' \
      "${R[cpu:redis:$pipeline:SET]}" "${R[cpu:redis:$pipeline:GET]}" "${R[cpu:off:$pipeline:SET]}" \
      "${R[cpu:off:$pipeline:GET]}" "${R[cpu:on:$pipeline:SET]}" "${R[cpu:on:$pipeline:GET]}"
    echo "     (guardrail samples taken during the last 'on' run at -P $pipeline: ${R[on:$pipeline:samples]})"
  done
} | tee "$RUN_DIR/report.txt"
