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

declare -A R
BASE_FLAGS=("${SERVER_FLAGS[@]}")
NAMESPACES='sessions match sess:* reserve 1mb evict none; cache default evict allkeys-lfu'

median() { printf '%s\n' "$@" | sort -g | awk '{ v[NR] = $1 } END { print v[int((NR + 1) / 2)] }'; }

# rps FILE TEST: requests per second of TEST (SET or GET) from redis-benchmark --csv.
rps() { awk -F'"' -v t="$2" '$2 == t { print $4; exit }' "$1"; }

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
  taskset -c "$CLIENT_CPU" redis-benchmark -p "$SRV_PORT" -t set,get -n "$REQUESTS" -r "$KEYSPACE" -d "$VALUE" \
    -c "$CLIENTS" -P "$pipeline" --csv >"$out" 2>/dev/null
  R[$variant:$pipeline:SET]+=" $(rps "$out" SET)"
  R[$variant:$pipeline:GET]+=" $(rps "$out" GET)"
  if [[ $variant == on ]]; then
    local t
    for t in SET GET; do
      R[ratio:$pipeline:$t]+=" $(echo "$(rps "$out" "$t") / $(rps "$RUN_DIR/off-P$pipeline-$round.csv" "$t")" | bc -l)"
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
  if [[ $key == ratio:* ]]; then
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
  printf '%-4s %-5s %14s %14s %14s %24s %12s\n' test "-P" "redis ops/s" "off ops/s" "on ops/s" "on/off per round" "on/redis"
  for pipeline in $PIPELINES; do
    for t in SET GET; do
      printf '%-4s %-5s %14s %14s %14s %24s %12.3f\n' "$t" "$pipeline" "${R[redis:$pipeline:$t]}" \
        "${R[off:$pipeline:$t]}" "${R[on:$pipeline:$t]}" "${R[ratio:$pipeline:$t]}" \
        "$(echo "${R[on:$pipeline:$t]} / ${R[redis:$pipeline:$t]}" | bc -l)"
    done
    echo "     (guardrail samples taken during the last 'on' run at -P $pipeline: ${R[on:$pipeline:samples]})"
  done
} | tee "$RUN_DIR/report.txt"
