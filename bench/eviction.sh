#!/usr/bin/env bash
# bench/eviction.sh: cache-aside trace replay under maxmemory, Redis vs Redoubt (miss ratios).
#
# For each trace (bench/cache-replay: Zipf 0.8/1.0/1.2, scan-polluted, shifting), replays
# "GET key; on a miss SET key <VALUE_SIZE bytes>" against:
#   - redis-server with maxmemory M and allkeys-lru, then allkeys-lfu;
#   - redoubt-server with the same M and each policy in REDOUBT_POLICIES
#     (a policy the server rejects, at start-up or in CONFIG GET, is reported as n/a).
# M = used_memory of an empty redis-server + FRACTION x the working set, where the working set is
# what used_memory grows by when all KEYS keys (key:NNNNNNNNNN, VALUE_SIZE-byte values) are
# loaded into an unlimited redis-server (measured at the start of every run), then calibrated
# (two short replays) so that redis-server really holds FRACTION x KEYS keys while the replay
# client is connected (its query/reply buffers count in used_memory: ~5% of M at the default
# size, half of it in QUICK mode). The same load into an unlimited Redoubt gives its bytes per
# key, and so how many more objects it fits at equal maxmemory (printed, not used).
#
# Usage: bench/eviction.sh                 (KEYS=100000, 2,000,000 requests per trace: ~3 min)
#        QUICK=1 bench/eviction.sh         (KEYS=10000, 200,000 requests: < 1 min)
# Environment: KEYS REQUESTS VALUE_SIZE FRACTION TRACES REDIS_POLICIES REDOUBT_POLICIES PIPELINE
#              WARMUP SEED MAXMEMORY (bytes; overrides the computed M) SERVER_CPU CLIENT_CPU
#              REDIS_BIN REDOUBT_BIN (set REDOUBT_BIN=none to skip Redoubt) CACHE_REPLAY_BIN OUT_DIR
# Output: a table on stdout; report.txt, results.csv, logs/ under bench/out/eviction-<stamp>/
#         (bench/out/eviction-latest points at the newest).
set -euo pipefail

# shellcheck source-path=SCRIPTDIR source=lib/common.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib/common.sh"

if [[ ${QUICK:-0} == 1 ]]; then
  KEYS=${KEYS:-10000}
else
  KEYS=${KEYS:-100000}
fi
REQUESTS=${REQUESTS:-$((20 * KEYS))}
VALUE_SIZE=${VALUE_SIZE:-100}
FRACTION=${FRACTION:-0.10}
TRACES=${TRACES:-"zipf-0.8 zipf-1.0 zipf-1.2 scan shift"}
REDIS_POLICIES=${REDIS_POLICIES:-"allkeys-lru allkeys-lfu"}
REDOUBT_POLICIES=${REDOUBT_POLICIES:-"allkeys-lru allkeys-lfu allkeys-auto"}
PIPELINE=${PIPELINE:-64}
WARMUP=${WARMUP:-0.2}
SEED=${SEED:-1}
OUT_DIR=${OUT_DIR:-$BENCH_DIR/out}
CACHE_REPLAY_BIN=${CACHE_REPLAY_BIN:-$REPO_ROOT/target/release/cache-replay}
REPLAY_TIMEOUT=${REPLAY_TIMEOUT:-600}

[[ $KEYS =~ ^[1-9][0-9]*$ && $REQUESTS =~ ^[1-9][0-9]*$ ]] || die "KEYS and REQUESTS must be positive integers"
[[ $VALUE_SIZE =~ ^[1-9][0-9]*$ ]] || die "VALUE_SIZE must be a positive integer"

bench_init
for t in redis-cli taskset timeout python3; do
  command -v "$t" >/dev/null || die "'$t' not found in PATH"
done
[[ -n $REDIS_BIN && -x $REDIS_BIN ]] || die "redis-server not found (set REDIS_BIN)"
if [[ ! -x $CACHE_REPLAY_BIN ]]; then
  log "building cache-replay (cargo build --release -p cache-replay)"
  (cd "$REPO_ROOT" && nice -n 19 cargo build --release -p cache-replay) >&2
fi
cp "$CACHE_REPLAY_BIN" "$BENCH_TMP/cache-replay"
REPLAY=$BENCH_TMP/cache-replay
HAVE_REDOUBT=1
if [[ $REDOUBT_BIN == none || ! -x $REDOUBT_BIN ]]; then
  [[ $REDOUBT_BIN == none ]] || log "WARNING: $REDOUBT_BIN missing: Redoubt rows skipped" \
    "(cargo build --release -p redoubt-server)"
  HAVE_REDOUBT=0
else
  REDOUBT_SRC_BIN=$REDOUBT_BIN
  cp "$REDOUBT_BIN" "$BENCH_TMP/redoubt-server" # frozen: a rebuild during the run cannot change it
  REDOUBT_BIN=$BENCH_TMP/redoubt-server
fi

STAMP=$(date +%Y%m%d-%H%M%S)
RUN_DIR=$OUT_DIR/eviction-$STAMP
mkdir -p "$RUN_DIR/logs"
REPORT=$RUN_DIR/report.txt
CSV=$RUN_DIR/results.csv
echo "trace,server,policy,status,maxmemory,miss_ratio,hit_ratio,hits,misses,counted,req_per_s,evicted_keys,dbsize,used_memory_end,set_errors" >"$CSV"

# try_start KIND LOGFILE FLAGS...: like start_server (common.sh) with extra flags, but returns 1
# instead of dying when the server does not come up (e.g. it rejects a flag).
try_start() {
  local kind=$1 logfile=$2 bin port pid attempt
  shift 2
  bin=$(server_bin "$kind")
  for attempt in 1 2; do
    port=$(free_port)
    echo "=== start $kind attempt $attempt port $port $(date +%T): $*" >>"$logfile"
    (cd "$BENCH_TMP" && exec taskset -c "$SERVER_CPU" "$bin" --port "$port" "${SERVER_FLAGS[@]}" "$@") \
      >>"$logfile" 2>&1 &
    pid=$!
    BENCH_PIDS+=("$pid")
    if wait_ready "$port" "$pid" 10; then
      SRV_PID=$pid
      SRV_PORT=$port
      return 0
    fi
    stop_server "$pid"
    # A process that exited by itself rejected its configuration: no point in retrying.
    grep -q "Ready to accept\|ready to accept" "$logfile" || return 1
  done
  return 1
}

config_get() { # PORT NAME -> value
  cli "$1" CONFIG GET "$2" 2>/dev/null | sed -n 2p | tr -d '\r'
}

# measure_working_set KIND: loads KEYS keys into an unlimited server; sets WS_BASE, WS_DELTA.
measure_working_set() {
  local kind=$1 logfile=$RUN_DIR/logs/$1-working-set.log out
  try_start "$kind" "$logfile" || die "$kind did not start; see $logfile"
  sleep 1
  WS_BASE=$(info_field "$SRV_PORT" memory used_memory)
  out=$(timeout -k 5 "$REPLAY_TIMEOUT" taskset -c "$CLIENT_CPU" "$REPLAY" load \
    --addr "127.0.0.1:$SRV_PORT" --keys "$KEYS" --value-size "$VALUE_SIZE" 2>&1) ||
    die "$kind: loading $KEYS keys failed: $out"
  [[ $(cli "$SRV_PORT" DBSIZE) == "$KEYS" ]] || die "$kind: DBSIZE after the load is not $KEYS"
  sleep 1
  WS_DELTA=$(($(info_field "$SRV_PORT" memory used_memory) - WS_BASE))
  stop_server "$SRV_PID"
  ((WS_DELTA > 0)) || die "$kind: used_memory did not grow when loading ($WS_DELTA)"
}

# run_one TRACE KIND POLICY: one fresh server, one replay; appends a row to results.csv.
run_one() {
  local trace=$1 kind=$2 policy=$3 logfile out status="ok" got mm line
  logfile=$RUN_DIR/logs/$kind-$policy-$trace.log
  if ! try_start "$kind" "$logfile" --maxmemory "$MAXMEMORY" --maxmemory-policy "$policy"; then
    log "$trace / $kind $policy: server did not start with these flags (see $logfile): n/a"
    echo "$trace,$kind,$policy,rejected,$MAXMEMORY,,,,,,,,,," >>"$CSV"
    return 0
  fi
  got=$(config_get "$SRV_PORT" maxmemory-policy)
  mm=$(config_get "$SRV_PORT" maxmemory)
  if [[ $got != "$policy" || $mm != "$MAXMEMORY" ]]; then
    log "$trace / $kind $policy: CONFIG GET says policy '$got', maxmemory '$mm': n/a"
    echo "$trace,$kind,$policy,unsupported,$MAXMEMORY,,,,,,,,,," >>"$CSV"
    stop_server "$SRV_PID"
    return 0
  fi
  out=$(timeout -k 5 "$REPLAY_TIMEOUT" taskset -c "$CLIENT_CPU" "$REPLAY" replay \
    --addr "127.0.0.1:$SRV_PORT" --trace "$trace" --keys "$KEYS" --requests "$REQUESTS" \
    --seed "$SEED" --value-size "$VALUE_SIZE" --pipeline "$PIPELINE" --warmup "$WARMUP" 2>>"$logfile") ||
    status="replay-failed"
  line=$(grep '^RESULT ' <<<"$out" || true)
  echo "$out" >>"$logfile"
  if [[ -z $line ]]; then
    log "$trace / $kind $policy: replay failed (see $logfile)"
    echo "$trace,$kind,$policy,replay-failed,$MAXMEMORY,,,,,,,,,," >>"$CSV"
    stop_server "$SRV_PID"
    return 0
  fi
  local evicted dbsize used
  evicted=$(info_field "$SRV_PORT" stats evicted_keys)
  dbsize=$(cli "$SRV_PORT" DBSIZE | tr -d '\r')
  used=$(info_field "$SRV_PORT" memory used_memory)
  stop_server "$SRV_PID"
  # A server that accepts the flags but does not keep to them is not comparable.
  if ((used > MAXMEMORY + MAXMEMORY / 5)) || [[ ${evicted:-0} == 0 ]]; then
    status="not-enforced"
  fi
  [[ $line == *" set_errors=0 "* ]] || status="set-errors"
  python3 - "$trace" "$kind" "$policy" "$status" "$MAXMEMORY" "${evicted:-}" "$dbsize" "$used" "$line" >>"$CSV" <<'PY'
import sys
trace, kind, policy, status, mm, evicted, dbsize, used, line = sys.argv[1:]
kv = dict(f.split("=", 1) for f in line.split()[1:])
print(",".join([trace, kind, policy, status, mm, kv["miss_ratio"], kv["hit_ratio"], kv["hits"],
                kv["misses"], kv["counted"], kv["req_per_s"], evicted, dbsize, used, kv["set_errors"]]))
PY
  local mr=${line#*miss_ratio=} rps=${line#*req_per_s=}
  log "$trace / $kind $policy: miss ratio ${mr%% *}, ${rps%% *} req/s, evicted ${evicted:-?}," \
    "DBSIZE $dbsize [$status]"
}

{
  echo "== Eviction: cache-aside replay under maxmemory, Redis vs Redoubt =="
  echo "date         : $(date '+%Y-%m-%d %H:%M:%S %Z')"
  echo "script       : KEYS=$KEYS REQUESTS=$REQUESTS VALUE_SIZE=$VALUE_SIZE FRACTION=$FRACTION PIPELINE=$PIPELINE WARMUP=$WARMUP SEED=$SEED bench/eviction.sh"
  echo "cpu          : $(cpu_model)"
  printf 'redis-server : %s\n' "$("$REDIS_BIN" --version)"
  if ((HAVE_REDOUBT)); then
    printf 'redoubt      : %s (%s, mtime %s)\n' "$("$REDOUBT_BIN" --version 2>/dev/null | head -n1)" \
      "$REDOUBT_SRC_BIN" "$(date -r "$REDOUBT_SRC_BIN" '+%Y-%m-%d %H:%M:%S')"
    printf 'redoubt src  : commit %s\n' "$(git -C "$REPO_ROOT" rev-parse --short HEAD 2>/dev/null || echo unknown)"
  fi
  echo "server cmd   : taskset -c $SERVER_CPU {redis-server|redoubt-server} --port <free>$(printf ' %q' "${SERVER_FLAGS[@]}") --maxmemory M --maxmemory-policy P"
  echo "client       : taskset -c $CLIENT_CPU cache-replay replay --pipeline $PIPELINE (one connection)"
  echo "results dir  : $RUN_DIR"
  echo "traces       :"
  "$REPLAY" traces --keys "$KEYS" --requests "$REQUESTS" --seed "$SEED" --traces "$(tr ' ' ',' <<<"$TRACES")" | sed 's/^/  /'
} | tee "$REPORT"

log "measuring the working set: $KEYS keys x $VALUE_SIZE-byte values into an unlimited redis-server"
measure_working_set redis
REDIS_BASE=$WS_BASE
REDIS_DELTA=$WS_DELTA
REDOUBT_DELTA=""
if ((HAVE_REDOUBT)); then
  log "same load into an unlimited Redoubt (bytes per key, for the object-capacity ratio)"
  measure_working_set redoubt
  REDOUBT_DELTA=$WS_DELTA
fi
M0=$(awk -v b="$REDIS_BASE" -v d="$REDIS_DELTA" -v f="$FRACTION" 'BEGIN { printf "%d", b + f * d }')
TARGET_KEYS=$(awk -v k="$KEYS" -v f="$FRACTION" 'BEGIN { printf "%d", k * f }')
# calibrate M: replays the zipf-1.0 trace (another seed) against redis-server (allkeys-lru) with
# maxmemory M and reads DBSIZE at the end (the cache is full then, with the replay connection's
# buffers counted); corrects M by the missing keys x the measured bytes per key. Twice.
calibrate() {
  local m=$1 held logfile=$RUN_DIR/logs/redis-calibration.log i
  for i in 1 2; do
    try_start redis "$logfile" --maxmemory "$m" --maxmemory-policy allkeys-lru ||
      die "redis-server did not start for the calibration; see $logfile"
    timeout -k 5 "$REPLAY_TIMEOUT" taskset -c "$CLIENT_CPU" "$REPLAY" replay --addr "127.0.0.1:$SRV_PORT" \
      --trace zipf-1.0 --keys "$KEYS" --requests "$REQUESTS" --seed "$((SEED + 1000))" \
      --value-size "$VALUE_SIZE" --pipeline "$PIPELINE" >>"$logfile" 2>&1 ||
      die "calibration replay failed; see $logfile"
    held=$(cli "$SRV_PORT" DBSIZE | tr -d '\r')
    stop_server "$SRV_PID"
    echo "calibration $i: maxmemory $m -> DBSIZE $held (target $TARGET_KEYS)" >>"$logfile"
    m=$(awk -v m="$m" -v t="$TARGET_KEYS" -v h="$held" -v d="$REDIS_DELTA" -v k="$KEYS" \
      'BEGIN { printf "%d", m + (t - h) * d / k }')
  done
  echo "$m"
}
if [[ -n ${MAXMEMORY:-} ]]; then
  MM_HOW="given (MAXMEMORY)"
else
  log "calibrating maxmemory so that redis-server holds $TARGET_KEYS keys during a replay"
  MAXMEMORY=$(calibrate "$M0")
  MM_HOW="Redis empty used_memory + $FRACTION x working set = $M0, calibrated so that Redis holds ~$TARGET_KEYS keys during a replay (calibration runs: $(grep '^calibration' "$RUN_DIR/logs/redis-calibration.log" | sed 's/.*maxmemory \([0-9]*\) -> DBSIZE \([0-9]*\).*/\1 -> \2 keys/' | paste -sd';' | sed 's/;/; /'))"
fi
{
  echo "working set  : Redis used_memory $REDIS_BASE (empty) + $REDIS_DELTA for $KEYS keys" \
    "= $(awk -v d="$REDIS_DELTA" -v k="$KEYS" 'BEGIN { printf "%.1f", d / k }') B/key"
  if [[ -n $REDOUBT_DELTA ]]; then
    echo "               Redoubt: $REDOUBT_DELTA for $KEYS keys = $(awk -v d="$REDOUBT_DELTA" -v k="$KEYS" 'BEGIN { printf "%.1f", d / k }') B/key;" \
      "objects per byte vs Redis: x$(awk -v a="$REDIS_DELTA" -v b="$REDOUBT_DELTA" 'BEGIN { printf "%.2f", a / b }')"
  fi
  echo "maxmemory    : $MAXMEMORY bytes: $MM_HOW"
} | tee -a "$REPORT"

for trace in $TRACES; do
  for policy in $REDIS_POLICIES; do
    run_one "$trace" redis "$policy"
  done
  if ((HAVE_REDOUBT)); then
    for policy in $REDOUBT_POLICIES; do
      run_one "$trace" redoubt "$policy"
    done
  fi
done

python3 - "$CSV" "$TRACES" "$REDIS_POLICIES" "$REDOUBT_POLICIES" "$HAVE_REDOUBT" <<'PY' | tee -a "$REPORT"
import csv, sys
path, traces, rpols, dpols, have = sys.argv[1], sys.argv[2].split(), sys.argv[3].split(), sys.argv[4].split(), sys.argv[5] == "1"
rows = {(r["trace"], r["server"], r["policy"]): r for r in csv.DictReader(open(path))}
cols = [("redis", p) for p in rpols] + ([("redoubt", p) for p in dpols] if have else [])
short = {"allkeys-lru": "LRU", "allkeys-lfu": "LFU"}
def name(c): return ("Redis " if c[0] == "redis" else "Redoubt ") + short.get(c[1], c[1].replace("allkeys-", ""))
def miss(t, c):
    r = rows.get((t,) + c)
    if not r or r["status"] != "ok":
        return None, ("n/a (%s)" % r["status"]) if r else "n/a"
    return float(r["miss_ratio"]), "%.4f" % float(r["miss_ratio"])
print("\nMiss ratio (after the warm-up; lower is better)\n")
w = max(14, max(len(name(c)) for c in cols) + 1)
print("%-10s" % "trace" + "".join("%*s" % (w + 8 if c[0] == "redoubt" else w, name(c)) for c in cols))
base = {p: ("redis", p) for p in rpols}
for t in traces:
    line = "%-10s" % t
    for c in cols:
        m, s = miss(t, c)
        if c[0] == "redoubt" and m is not None:
            rel = []
            for p in ("allkeys-lru", "allkeys-lfu"):
                b, _ = miss(t, ("redis", p)) if p in rpols else (None, "")
                if b:
                    rel.append("%+.0f" % ((m / b - 1) * 100))
            s += " " + ("(" + "/".join(rel) + "%)" if rel else "")
        line += "%*s" % (w + 8 if c[0] == "redoubt" else w, s)
    print(line)
line = "%-10s" % "keys held"
for c in cols:
    held = [int(rows[(t,) + c]["dbsize"]) for t in traces if (t,) + c in rows and rows[(t,) + c]["status"] == "ok"]
    line += "%*s" % (w + 8 if c[0] == "redoubt" else w, ("~%d" % (sum(held) / len(held))) if held else "-")
print(line)
print("\nRedoubt cells: (change vs Redis LRU / vs Redis LFU, in % of Redis's miss ratio; negative = fewer misses)")
print("keys held: mean DBSIZE at the end of the replays: what each server fits in the same maxmemory")
print("(per-key bytes and the empty server's own used_memory, which counts against maxmemory, both differ)")
if "allkeys-lru" in rpols and "allkeys-lfu" in rpols:
    print("Redis LFU vs Redis LRU: " + ", ".join(
        "%s %+.1f%%" % (t, (miss(t, ("redis", "allkeys-lfu"))[0] / miss(t, ("redis", "allkeys-lru"))[0] - 1) * 100)
        for t in traces if miss(t, ("redis", "allkeys-lfu"))[0] and miss(t, ("redis", "allkeys-lru"))[0]))
bad = sorted({r["status"] for r in rows.values() if r["status"] != "ok"})
if bad:
    print("n/a: rejected = the server did not start with the flags; unsupported = CONFIG GET did not")
    print("     return the policy/maxmemory; not-enforced = used_memory ended > 1.2 x maxmemory or")
    print("     nothing was evicted; set-errors = a SET failed (e.g. OOM); replay-failed = see logs/.")
PY
echo "files: $RUN_DIR/{report.txt,results.csv,logs/}" | tee -a "$REPORT"
ln -sfn "$(basename "$RUN_DIR")" "$OUT_DIR/eviction-latest"
