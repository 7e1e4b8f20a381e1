#!/usr/bin/env bash
# bench/guardrails-instructions.sh: what the guardrails cost, in instructions (valgrind
# callgrind), which unlike throughput is repeatable on a noisy machine. The same release
# binary runs twice under callgrind with one worker (taskset to one CPU): guardrails off
# (guard-interval 0, guard-mrc no, admin-enabled no) and on as shipped (guard-interval 5,
# guard-mrc yes, the admin listener). Each serves the same load: SETS SETs then GETS GETs
# (redis-benchmark, 4 clients, pipeline 16, random keys of a KEYSPACE-key space), with the
# namespaces sessions and cache (evicting with allkeys-lfu, so its curve runs the LFU
# simulations). Reported: instructions of the worker thread and of all
# threads, and the on/off ratios.
#
# Usage: bench/guardrails-instructions.sh
# Environment: SETS GETS KEYSPACE REDOUBT_BIN OUT_DIR
set -euo pipefail

# shellcheck source-path=SCRIPTDIR source=lib/common.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib/common.sh"

SETS=${SETS:-100000}
GETS=${GETS:-200000}
KEYSPACE=${KEYSPACE:-100000}
OUT_DIR=${OUT_DIR:-$BENCH_DIR/out}

bench_init
bench_check_tools redis-benchmark valgrind callgrind_annotate
RUN_DIR=$OUT_DIR/guardrails-instructions-$(date +%Y%m%d-%H%M%S)
mkdir -p "$RUN_DIR"
ln -sfn "$RUN_DIR" "$OUT_DIR/guardrails-instructions-latest"

# summary FILE: the instruction count a callgrind output file reports.
summary() { awk '/^summary:/ { print $2; exit }' "$1"; }

run() {
  local variant=$1 dir=$RUN_DIR/$1 port flags pid n
  case $variant in
    off) flags=(--guard-interval 0 --guard-mrc no --admin-enabled no) ;;
    on) flags=(--guard-interval 5 --guard-mrc yes --admin-port 0) ;;
  esac
  mkdir -p "$dir"
  port=$(free_port)
  (cd "$dir" && exec taskset -c "$SERVER_CPU" valgrind --tool=callgrind --separate-threads=yes \
    --callgrind-out-file="$dir/callgrind.out" "$REDOUBT_BIN" --port "$port" --bind 127.0.0.1 --save '' \
    --appendonly no --namespace 'sessions match sess:* reserve 1mb evict none; cache default evict allkeys-lfu' "${flags[@]}") \
    >"$dir/server.log" 2>&1 &
  pid=$!
  BENCH_PIDS+=("$pid")
  wait_ready "$port" "$pid" 60 || die "$variant did not start under valgrind; see $dir/server.log"
  taskset -c "$CLIENT_CPU" redis-benchmark -p "$port" -t set -n "$SETS" -r "$KEYSPACE" -d 64 -c 4 -P 16 -q >"$dir/set.txt"
  taskset -c "$CLIENT_CPU" redis-benchmark -p "$port" -t get -n "$GETS" -r "$KEYSPACE" -d 64 -c 4 -P 16 -q >"$dir/get.txt"
  cli "$port" SHUTDOWN NOSAVE >/dev/null 2>&1 || true
  wait "$pid" 2>/dev/null || true
  # the worker is the thread that ran the most instructions
  local worker=0 all=0
  for f in "$dir"/callgrind.out-*; do
    n=$(summary "$f")
    all=$((all + n))
    ((n > worker)) && worker=$n
  done
  R[$variant:worker]=$worker
  R[$variant:all]=$all
}

declare -A R
warn_if_busy
run off
run on
{
  echo "guardrails cost in instructions: $SETS SET + $GETS GET, 4 clients, -P 16, keyspace $KEYSPACE, one worker"
  echo "versions : $(versions)"
  printf '%-12s %16s %16s %8s\n' "" "off" "on" "on/off"
  for k in worker all; do
    printf '%-12s %16s %16s %8.4f\n' "$k" "${R[off:$k]}" "${R[on:$k]}" "$(echo "${R[on:$k]} / ${R[off:$k]}" | bc -l)"
  done
  printf 'instructions per request, all threads: off %.0f, on %.0f\n' \
    "$(echo "${R[off:all]} / ($SETS + $GETS)" | bc -l)" "$(echo "${R[on:all]} / ($SETS + $GETS)" | bc -l)"
} | tee "$RUN_DIR/report.txt"
