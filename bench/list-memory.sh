#!/usr/bin/env bash
# bench/list-memory.sh: memory per list element, Redoubt vs redis-server.
#
# Two shapes of list, each loaded into a fresh server of each kind (same flags for both:
# --save '' --appendonly no, on free loopback ports, never 6379):
#   small: SMALL_KEYS lists of 100 elements (one listpack each in Redis 7.2; quicklists in 7.0)
#   big:   BIG_KEYS lists of 100,000 elements (quicklists of ~8 KiB nodes)
# Elements are short strings "vNNNNNNN" (8 bytes; not integers, so no integer encoding).
# The RESP input (RPUSH of 100 elements per command) is generated once by python3 and piped
# with `redis-cli --pipe`, so both servers get identical input. After the load the script
# checks DBSIZE and the LLEN of the last key, then reports
#   (used_memory after - used_memory before) / elements   (and the same for used_memory_rss).
# The per-element figure of the small shape includes the keys' own overhead (1 key per 100
# elements); the big one is essentially the list encoding alone.
#
# Usage: bench/list-memory.sh
#        SMALL_KEYS=1000 BIG_KEYS=2 bench/list-memory.sh     (quick run)
# Environment: SMALL_KEYS (10000) BIG_KEYS (10) LOAD_TIMEOUT SETTLE SERVER_CPU CLIENT_CPU
#              REDIS_BIN REDOUBT_BIN OUT_DIR
# Output: a table on stdout; report.txt and summary.csv under
#         bench/out/list-memory-<timestamp>/ (bench/out/list-memory-latest points at the newest).
set -euo pipefail

# shellcheck source-path=SCRIPTDIR source=lib/common.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib/common.sh"

SMALL_KEYS=${SMALL_KEYS:-10000}
BIG_KEYS=${BIG_KEYS:-10}
LOAD_TIMEOUT=${LOAD_TIMEOUT:-300} # seconds for one redis-cli --pipe load
SETTLE=${SETTLE:-2}               # seconds to let INFO's RSS sample settle
OUT_DIR=${OUT_DIR:-$BENCH_DIR/out}
KINDS=(redis redoubt)
SHAPES=(small big)
declare -A PER_KEY=([small]=100 [big]=100000)
declare -A KEYS=([small]=$SMALL_KEYS [big]=$BIG_KEYS)

for shape in "${SHAPES[@]}"; do
  [[ ${KEYS[$shape]} =~ ^[1-9][0-9]*$ && ${KEYS[$shape]} -le 1000000 ]] ||
    die "${shape^^}_KEYS must be 1..1000000"
done

# gen_resp FILE KEYS PER_KEY: RPUSH list:NNNNNNN with PER_KEY elements each, 100 per command.
gen_resp() {
  python3 - "$1" "$2" "$3" <<'PY'
import sys
path, keys, per_key = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
batch = 100
with open(path, "wb") as f:
    for k in range(keys):
        key = b"list:%07d" % k
        for lo in range(0, per_key, batch):
            n = min(batch, per_key - lo)
            parts = [b"*%d\r\n$5\r\nRPUSH\r\n$%d\r\n%s\r\n" % (n + 2, len(key), key)]
            parts += [b"$8\r\nv%07d\r\n" % (i % 10000000) for i in range(lo, lo + n)]
            f.write(b"".join(parts))
PY
}

commands_in() { # commands in a generated file for KEYS x PER_KEY
  echo $(($1 * (($2 + 99) / 100)))
}

declare -A R # R[shape:kind:metric]

measure() {
  local shape=$1 kind=$2 file=$3 logfile out t0 t1 dbsize llen last expected
  logfile=$RUN_DIR/logs/$kind-$shape.log
  start_server "$kind" "$logfile"
  log "$shape / $kind: pid $SRV_PID, port $SRV_PORT; loading ${KEYS[$shape]} x ${PER_KEY[$shape]}"
  sleep "$SETTLE"
  R[$shape:$kind:mem0]=$(info_field "$SRV_PORT" memory used_memory)
  R[$shape:$kind:rss0]=$(info_field "$SRV_PORT" memory used_memory_rss)
  t0=$(date +%s%N)
  out=$(timeout -k 5 "$LOAD_TIMEOUT" taskset -c "$CLIENT_CPU" \
    redis-cli -h 127.0.0.1 -p "$SRV_PORT" --pipe <"$file" 2>&1) ||
    die "$kind: redis-cli --pipe failed or timed out after ${LOAD_TIMEOUT}s: $out"
  t1=$(date +%s%N)
  R[$shape:$kind:load_s]=$(awk -v a="$t0" -v b="$t1" 'BEGIN { printf "%.2f", (b - a) / 1e9 }')
  expected=$(commands_in "${KEYS[$shape]}" "${PER_KEY[$shape]}")
  [[ $out == *"errors: 0, replies: $expected"* ]] ||
    die "$kind ($shape): unexpected redis-cli --pipe result: ${out//$'\n'/ | }"
  dbsize=$(cli "$SRV_PORT" DBSIZE)
  [[ $dbsize == "${KEYS[$shape]}" ]] || die "$kind ($shape): DBSIZE is '$dbsize', expected ${KEYS[$shape]}"
  last=$(printf 'list:%07d' $((KEYS[$shape] - 1)))
  llen=$(cli "$SRV_PORT" LLEN "$last")
  [[ $llen == "${PER_KEY[$shape]}" ]] || die "$kind ($shape): LLEN $last is '$llen', expected ${PER_KEY[$shape]}"
  R[$shape:$kind:encoding]=$(cli "$SRV_PORT" OBJECT ENCODING "$last")
  sleep "$SETTLE"
  R[$shape:$kind:mem1]=$(info_field "$SRV_PORT" memory used_memory)
  R[$shape:$kind:rss1]=$(info_field "$SRV_PORT" memory used_memory_rss)
  log "$shape / $kind: loaded in ${R[$shape:$kind:load_s]}s, encoding ${R[$shape:$kind:encoding]}," \
    "used_memory ${R[$shape:$kind:mem0]} -> ${R[$shape:$kind:mem1]}," \
    "rss ${R[$shape:$kind:rss0]} -> ${R[$shape:$kind:rss1]}"
  stop_server "$SRV_PID"
}

# ---------------------------------------------------------------------------------------------
bench_init
bench_check_tools redis-cli

STAMP=$(date +%Y%m%d-%H%M%S)
RUN_DIR=$OUT_DIR/list-memory-$STAMP
mkdir -p "$RUN_DIR/logs"
REPORT=$RUN_DIR/report.txt

{
  echo "== Redoubt vs Redis: memory per list element =="
  echo "date         : $(date '+%Y-%m-%d %H:%M:%S %Z')"
  echo "script       : SMALL_KEYS=$SMALL_KEYS BIG_KEYS=$BIG_KEYS bench/list-memory.sh"
  echo "server cmd   : taskset -c $SERVER_CPU {redis-server|redoubt-server} --port <port>$(printf ' %q' "${SERVER_FLAGS[@]}")   (fresh instance per shape and server)"
  echo "load cmd     : taskset -c $CLIENT_CPU redis-cli -h 127.0.0.1 -p <port> --pipe < <RESP file>"
  echo "data         : small = $SMALL_KEYS lists x 100 elements, big = $BIG_KEYS lists x 100,000 elements;"
  echo "               elements vNNNNNNN (8 B), RPUSH 100 per command"
  echo "cpu          : $(cpu_model)"
  versions
  echo "redis-cli    : $(redis-cli --version)"
  echo "results dir  : $RUN_DIR"
} | tee "$REPORT"

for shape in "${SHAPES[@]}"; do
  log "generating RESP input for $shape (${KEYS[$shape]} x ${PER_KEY[$shape]})"
  gen_resp "$BENCH_TMP/$shape.resp" "${KEYS[$shape]}" "${PER_KEY[$shape]}"
  for kind in "${KINDS[@]}"; do
    measure "$shape" "$kind" "$BENCH_TMP/$shape.resp"
  done
  rm -f "$BENCH_TMP/$shape.resp"
done

DATA=$RUN_DIR/raw.txt
for k in "${!R[@]}"; do printf '%s=%s\n' "$k" "${R[$k]}"; done | sort >"$DATA"

python3 - "$DATA" "$RUN_DIR" "$SMALL_KEYS" "$BIG_KEYS" <<'PY' | tee -a "$REPORT"
import csv, sys

data_path, run_dir, small_keys, big_keys = sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4])
R = dict(line.rstrip("\n").split("=", 1) for line in open(data_path))
SHAPES = [("small", "100 elements/list", small_keys * 100), ("big", "100,000 elements/list", big_keys * 100000)]
rows = []
for shape, label, elements in SHAPES:
    for metric, short in [("used_memory", "mem"), ("used_memory_rss", "rss")]:
        per = {}
        for kind in ["redis", "redoubt"]:
            delta = int(R["%s:%s:%s1" % (shape, kind, short)]) - int(R["%s:%s:%s0" % (shape, kind, short)])
            per[kind] = delta / elements
        ratio = per["redoubt"] / per["redis"] if per["redis"] > 0 else float("nan")
        rows.append((shape, label, metric, per["redis"], per["redoubt"], ratio,
                     R["%s:redis:encoding" % shape], R["%s:redoubt:encoding" % shape]))
with open(run_dir + "/summary.csv", "w", newline="") as f:
    w = csv.writer(f)
    w.writerow(["shape", "metric", "redis_bytes_per_element", "redoubt_bytes_per_element", "ratio",
                "redis_encoding", "redoubt_encoding"])
    for r in rows:
        w.writerow([r[0], r[2], "%.2f" % r[3], "%.2f" % r[4], "%.3f" % r[5], r[6], r[7]])
hdr = "%-24s %-16s %9s %9s %7s   %s" % ("shape", "metric", "Redis", "Redoubt", "ratio", "encodings (Redis / Redoubt)")
print("\nBytes per element = (after - before) / elements loaded; ratio = Redoubt / Redis (lower is leaner).\n")
print(hdr)
print("-" * len(hdr))
for r in rows:
    print("%-24s %-16s %9.2f %9.2f %7.3f   %s / %s" % (r[1], r[2], r[3], r[4], r[5], r[6], r[7]))
print("\nfiles: %s/{report.txt,summary.csv}" % run_dir)
PY

ln -sfn "$(basename "$RUN_DIR")" "$OUT_DIR/list-memory-latest"
