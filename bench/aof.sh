#!/usr/bin/env bash
# bench/aof.sh: SET throughput with the append-only log on, Redoubt vs redis-server, under
# `appendfsync always` and `appendfsync everysec` (and with the log off, for reference).
#
# For each policy and server: start it fresh (pinned to SERVER_CPU, same flags for both:
# appendonly yes, no snapshots, its log in a fresh directory on the same filesystem), then
# redis-benchmark SET (pinned to CLIENT_CPU) with CLIENTS clients, no pipelining, random
# keys of a KEYSPACE-key space and VALUE-byte values; ops/s and p50/p99 from its summary.
# Every acknowledged SET under `always` is on disk before its reply (group commit: one
# fsync covers every client's writes that arrived while the previous one ran).
#
# The servers alternate, ROUNDS times; the table shows each figure's median over the rounds.
#
# Usage: bench/aof.sh                       (200,000 SETs per run, 3 rounds)
#        REQUESTS=50000 ROUNDS=1 bench/aof.sh   (quick run)
# Environment: REQUESTS CLIENTS VALUE KEYSPACE ROUNDS SERVER_CPU CLIENT_CPU REDIS_BIN REDOUBT_BIN OUT_DIR
# Output: a table on stdout; report.txt under bench/out/aof-<timestamp>/.
set -euo pipefail

# shellcheck source-path=SCRIPTDIR source=lib/common.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib/common.sh"

REQUESTS=${REQUESTS:-200000}
CLIENTS=${CLIENTS:-50}
VALUE=${VALUE:-64}
KEYSPACE=${KEYSPACE:-100000}
ROUNDS=${ROUNDS:-3}
OUT_DIR=${OUT_DIR:-$BENCH_DIR/out}

[[ $REQUESTS =~ ^[1-9][0-9]*$ ]] || die "REQUESTS must be a positive number"

bench_init
bench_check_tools redis-benchmark
RUN_DIR=$OUT_DIR/aof-$(date +%Y%m%d-%H%M%S)
mkdir -p "$RUN_DIR/logs"
ln -sfn "$RUN_DIR" "$OUT_DIR/aof-latest"

# p50 and p99 (ms) from redis-benchmark's latency summary.
p50() { awk '/latency summary/ { getline; getline; print $3; exit }' "$1"; }
p99() { awk '/latency summary/ { getline; getline; print $5; exit }' "$1"; }
rps() { awk '/throughput summary/ { print $3; exit }' "$1"; }

declare -A R
BASE_FLAGS=("${SERVER_FLAGS[@]}")

# median VALUES...: the middle value (the lower middle for an even count).
median() { printf '%s\n' "$@" | sort -g | awk '{ v[NR] = $1 } END { print v[int((NR + 1) / 2)] }'; }

measure() {
  local kind=$1 policy=$2 round=$3 logfile=$RUN_DIR/logs/$kind-$policy.log out=$RUN_DIR/$kind-$policy-$round.txt
  rm -rf "$BENCH_TMP/appendonlydir"
  if [[ $policy == off ]]; then
    SERVER_FLAGS=("${BASE_FLAGS[@]}" --appendonly no --save "")
  else
    SERVER_FLAGS=("${BASE_FLAGS[@]}" --appendonly yes --appendfsync "$policy" --save ""
      --auto-aof-rewrite-percentage 0)
  fi
  wait_quiet
  start_server "$kind" "$logfile"
  log "$kind, appendfsync $policy: pid $SRV_PID, port $SRV_PORT"
  taskset -c "$CLIENT_CPU" redis-benchmark -p "$SRV_PORT" -t set -n "$REQUESTS" -r "$KEYSPACE" -d "$VALUE" \
    -c "$CLIENTS" >"$out" 2>&1
  R[$kind:$policy:rps]+=" $(rps "$out")"
  R[$kind:$policy:p50]+=" $(p50 "$out")"
  R[$kind:$policy:p99]+=" $(p99 "$out")"
  if [[ $policy != off ]]; then
    R[$kind:$policy:bytes]=$(du -sb "$BENCH_TMP/appendonlydir" | cut -f1)
  else
    R[$kind:$policy:bytes]=0
  fi
  stop_server "$SRV_PID"
}

warn_if_busy
for ((round = 1; round <= ROUNDS; round++)); do
  for policy in always everysec off; do
    for kind in redis redoubt; do measure "$kind" "$policy" "$round"; done
  done
done
for key in "${!R[@]}"; do
  # shellcheck disable=SC2086 # the values are a space-separated list
  [[ $key == *:bytes ]] || R[$key]=$(median ${R[$key]})
done

{
  echo "append-only log benchmark: redis-benchmark SET -n $REQUESTS -c $CLIENTS -d $VALUE -r $KEYSPACE; medians of $ROUNDS rounds"
  echo "versions : $(versions)"
  echo "cpu      : $(cpu_model); server on CPU $SERVER_CPU, client on CPU $CLIENT_CPU"
  echo "disk     : $(df -h "$BENCH_TMP" | awk 'NR == 2 { print $1 " (" $6 ")" }')"
  printf '%-9s %-8s %12s %9s %9s %12s %14s\n' fsync server "ops/s" "p50 ms" "p99 ms" "log bytes" "ops/s vs redis"
  for policy in always everysec off; do
    for kind in redis redoubt; do
      printf '%-9s %-8s %12s %9s %9s %12s %14.2f\n' "$policy" "$kind" "${R[$kind:$policy:rps]}" \
        "${R[$kind:$policy:p50]}" "${R[$kind:$policy:p99]}" "${R[$kind:$policy:bytes]}" \
        "$(echo "${R[$kind:$policy:rps]} / ${R[redis:$policy:rps]}" | bc -l)"
    done
  done
} | tee "$RUN_DIR/report.txt"
