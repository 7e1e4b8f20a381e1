#!/usr/bin/env bash
# bench/memory.sh: memory per key, Redoubt vs redis-server.
#
# For each variant (plain SET, then SET ... EX <ttl>) and each server: start it fresh (pinned to
# SERVER_CPU, same flags for both), read used_memory and used_memory_rss from INFO, load KEYS keys
# "key:NNNNNNN" (7-digit zero-padded, 11 bytes) with 10-byte values "vNNNNNNNNN" through
# `redis-cli --pipe` (RESP generated once by python3, so both servers get identical input),
# check DBSIZE (and the TTLs), read INFO again and report (after - before) / KEYS.
#
# Usage: bench/memory.sh                 (1,000,000 keys)
#        KEYS=100000 bench/memory.sh     (quick run)
# Environment: KEYS TTL LOAD_TIMEOUT SETTLE SERVER_CPU CLIENT_CPU REDIS_BIN REDOUBT_BIN OUT_DIR
# Output: a table on stdout; summary.csv, summary.json and report.txt under
#         bench/out/memory-<timestamp>/ (bench/out/memory-latest points at the newest).
set -euo pipefail

# shellcheck source-path=SCRIPTDIR source=lib/common.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib/common.sh"

KEYS=${KEYS:-1000000}
TTL=${TTL:-100000}
LOAD_TIMEOUT=${LOAD_TIMEOUT:-300} # seconds for one redis-cli --pipe load
SETTLE=${SETTLE:-2}               # seconds to let INFO's RSS sample (Redis: every 100 ms) settle
OUT_DIR=${OUT_DIR:-$BENCH_DIR/out}
KINDS=(redis redoubt)
VARIANTS=(plain ttl)

[[ $KEYS =~ ^[1-9][0-9]*$ && $KEYS -le 10000000 ]] ||
  die "KEYS must be 1..10000000 (keys are key:NNNNNNN, 7 digits)"
[[ $TTL =~ ^[1-9][0-9]*$ ]] || die "TTL must be a positive integer"

# gen_resp FILE [TTL]: KEYS SET commands in RESP, one per key, with EX TTL if given.
gen_resp() {
  python3 - "$KEYS" "$1" "${2:-}" <<'PY'
import sys
n, path, ttl = int(sys.argv[1]), sys.argv[2], sys.argv[3]
if ttl:
    head = b"*5\r\n$3\r\nSET\r\n$11\r\nkey:"
    tail = b"\r\n$2\r\nEX\r\n$%d\r\n%s\r\n" % (len(ttl), ttl.encode())
else:
    head, tail = b"*3\r\n$3\r\nSET\r\n$11\r\nkey:", b"\r\n"
with open(path, "wb") as f:
    step = 100000
    for lo in range(0, n, step):
        f.write(b"".join(b"%s%07d\r\n$10\r\nv%09d%s" % (head, i, i, tail)
                         for i in range(lo, min(n, lo + step))))
PY
}

declare -A R # R[variant:kind:metric]

measure() {
  local variant=$1 kind=$2 file=$3 logfile out t0 t1 dbsize ttl_seen expires
  logfile=$RUN_DIR/logs/$kind-$variant.log
  start_server "$kind" "$logfile"
  log "$variant / $kind: pid $SRV_PID, port $SRV_PORT; loading $KEYS keys"
  sleep "$SETTLE"
  R[$variant:$kind:mem0]=$(info_field "$SRV_PORT" memory used_memory)
  R[$variant:$kind:rss0]=$(info_field "$SRV_PORT" memory used_memory_rss)
  t0=$(date +%s%N)
  out=$(timeout -k 5 "$LOAD_TIMEOUT" taskset -c "$CLIENT_CPU" \
    redis-cli -h 127.0.0.1 -p "$SRV_PORT" --pipe <"$file" 2>&1) ||
    die "$kind: redis-cli --pipe failed or timed out after ${LOAD_TIMEOUT}s: $out"
  t1=$(date +%s%N)
  R[$variant:$kind:load_s]=$(awk -v a="$t0" -v b="$t1" 'BEGIN { printf "%.2f", (b - a) / 1e9 }')
  [[ $out == *"errors: 0, replies: $KEYS"* ]] ||
    die "$kind ($variant): unexpected redis-cli --pipe result: ${out//$'\n'/ | }"
  dbsize=$(cli "$SRV_PORT" DBSIZE)
  [[ $dbsize == "$KEYS" ]] || die "$kind ($variant): DBSIZE is '$dbsize', expected $KEYS"
  if [[ $variant == ttl ]]; then
    ttl_seen=$(cli "$SRV_PORT" TTL "key:$(printf '%07d' $((KEYS - 1)))")
    [[ $ttl_seen =~ ^[0-9]+$ && $ttl_seen -gt 0 && $ttl_seen -le $TTL ]] ||
      die "$kind ($variant): TTL of the last key is '$ttl_seen', expected 1..$TTL"
    expires=$(cli "$SRV_PORT" INFO keyspace | tr -d '\r' | sed -n 's/^db0:.*expires=\([0-9]*\).*/\1/p')
    [[ -z $expires || $expires == "$KEYS" ]] ||
      die "$kind ($variant): INFO keyspace shows expires=$expires, expected $KEYS"
  fi
  sleep "$SETTLE"
  R[$variant:$kind:mem1]=$(info_field "$SRV_PORT" memory used_memory)
  R[$variant:$kind:rss1]=$(info_field "$SRV_PORT" memory used_memory_rss)
  R[$variant:$kind:dbsize]=$dbsize
  log "$variant / $kind: loaded in ${R[$variant:$kind:load_s]}s, DBSIZE $dbsize," \
    "used_memory ${R[$variant:$kind:mem0]} -> ${R[$variant:$kind:mem1]}," \
    "rss ${R[$variant:$kind:rss0]} -> ${R[$variant:$kind:rss1]}"
  stop_server "$SRV_PID"
}

# ---------------------------------------------------------------------------------------------
bench_init
bench_check_tools redis-cli

STAMP=$(date +%Y%m%d-%H%M%S)
RUN_DIR=$OUT_DIR/memory-$STAMP
mkdir -p "$RUN_DIR/logs"
REPORT=$RUN_DIR/report.txt

{
  echo "== Redoubt vs Redis: memory per key =="
  echo "date         : $(date '+%Y-%m-%d %H:%M:%S %Z')"
  echo "script       : KEYS=$KEYS TTL=$TTL bench/memory.sh"
  echo "server cmd   : taskset -c $SERVER_CPU {redis-server|redoubt-server} --port <port>$(printf ' %q' "${SERVER_FLAGS[@]}")   (fresh instance per variant and server)"
  echo "load cmd     : taskset -c $CLIENT_CPU redis-cli -h 127.0.0.1 -p <port> --pipe < <RESP file>"
  echo "data         : $KEYS x SET key:NNNNNNN (11 B) vNNNNNNNNN (10 B); ttl variant adds EX $TTL"
  echo "cpu          : $(cpu_model)"
  versions
  echo "redis-cli    : $(redis-cli --version)"
  echo "results dir  : $RUN_DIR"
} | tee "$REPORT"

log "generating RESP input ($KEYS keys, two variants)"
gen_resp "$BENCH_TMP/plain.resp"
gen_resp "$BENCH_TMP/ttl.resp" "$TTL"

for variant in "${VARIANTS[@]}"; do
  for kind in "${KINDS[@]}"; do
    measure "$variant" "$kind" "$BENCH_TMP/$variant.resp"
  done
done

DATA=$RUN_DIR/raw.txt
for k in "${!R[@]}"; do printf '%s=%s\n' "$k" "${R[$k]}"; done | sort >"$DATA"

python3 - "$DATA" "$RUN_DIR" "$KEYS" "$TTL" <<'PY' | tee -a "$REPORT"
import csv, json, sys

data_path, run_dir, keys, ttl = sys.argv[1], sys.argv[2], int(sys.argv[3]), sys.argv[4]
R = {}
for line in open(data_path):
    k, _, v = line.rstrip("\n").partition("=")
    R[k] = v
KINDS = ["redis", "redoubt"]
VARIANTS = [("plain", "SET k v"), ("ttl", "SET k v EX %s" % ttl)]
METRICS = [("used_memory", "mem"), ("used_memory_rss", "rss")]

results = []
for variant, label in VARIANTS:
    for metric, short in METRICS:
        e = {"variant": variant, "command": label, "metric": metric}
        for kind in KINDS:
            before = int(R["%s:%s:%s0" % (variant, kind, short)])
            after = int(R["%s:%s:%s1" % (variant, kind, short)])
            e[kind] = {"before": before, "after": after, "delta": after - before,
                       "bytes_per_key": (after - before) / keys,
                       "load_s": float(R["%s:%s:load_s" % (variant, kind)])}
        rb = e["redis"]["bytes_per_key"]
        e["ratio"] = e["redoubt"]["bytes_per_key"] / rb if rb > 0 else None
        results.append(e)

json.dump({"keys": keys, "ttl": int(ttl), "results": results},
          open(run_dir + "/summary.json", "w"), indent=2)
with open(run_dir + "/summary.csv", "w", newline="") as f:
    w = csv.writer(f)
    w.writerow(["variant", "metric", "redis_bytes_per_key", "redoubt_bytes_per_key", "ratio",
                "redis_before", "redis_after", "redoubt_before", "redoubt_after",
                "redis_load_s", "redoubt_load_s"])
    for e in results:
        w.writerow([e["variant"], e["metric"], "%.2f" % e["redis"]["bytes_per_key"],
                    "%.2f" % e["redoubt"]["bytes_per_key"],
                    "" if e["ratio"] is None else "%.3f" % e["ratio"],
                    e["redis"]["before"], e["redis"]["after"], e["redoubt"]["before"],
                    e["redoubt"]["after"], e["redis"]["load_s"], e["redoubt"]["load_s"]])

mb = lambda b: "%.1f MB" % (b / 1e6)
out = ["", "Bytes per key = (after - before) / %s keys; ratio = Redoubt / Redis (lower is leaner)."
       % format(keys, ","), ""]
hdr = "%-20s  %-15s  %9s  %9s  %7s    %-23s  %-23s" % (
    "variant", "metric", "Redis", "Redoubt", "ratio", "Redis before -> after",
    "Redoubt before -> after")
out += [hdr, "-" * len(hdr)]
for e in results:
    R_, D_ = e["redis"], e["redoubt"]
    out.append(("%-20s  %-15s  %9.1f  %9.1f  %7s    %-23s  %s" % (
        e["command"], e["metric"], R_["bytes_per_key"], D_["bytes_per_key"],
        "-" if e["ratio"] is None else "%.3f" % e["ratio"],
        "%s -> %s" % (mb(R_["before"]), mb(R_["after"])),
        "%s -> %s" % (mb(D_["before"]), mb(D_["after"])))).rstrip())
out.append("")
for variant, label in VARIANTS:
    e = next(x for x in results if x["variant"] == variant)
    out.append("load time (redis-cli --pipe, %s): Redis %.2fs, Redoubt %.2fs"
               % (label, e["redis"]["load_s"], e["redoubt"]["load_s"]))
out.append("DBSIZE verified = %s on every load; TTL variant: TTL and INFO keyspace expires checked."
           % format(keys, ","))
out.append("files: %s/{report.txt,summary.csv,summary.json}" % run_dir)
print("\n".join(out))
PY

ln -sfn "$(basename "$RUN_DIR")" "$OUT_DIR/memory-latest"
