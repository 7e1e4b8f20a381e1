#!/usr/bin/env bash
# bench/collection-memory.sh: memory per element of hashes, sets, sorted sets and streams,
# Redoubt vs redis-server.
#
# For each case and each server: start it fresh (same flags for both: --save '' --appendonly no,
# on a free loopback port, never 6379), warm it up (a few hundred commands of the same kind into
# database 1, so one-off allocations such as thread caches are in the baseline), read used_memory
# from INFO, load the collections into database 0 through `redis-cli --pipe` (RESP generated once
# by python3, so both servers get identical input), check the element counts, read INFO again and
# report (after - before) / elements. Allocator caches make the baseline noisy by a few hundred
# KB, hence the million elements per case by default.
#
# Cases (KEYS_SMALL keys of 100 elements, and KEYS_LARGE keys of 100,000 elements):
#   hash          HSET h:K field:N value:N        (short fields and values)
#   set           SADD s:K member:N               (short strings)
#   intset        SADD i:K N                      (integers: intsets at 100, hashtables at 100,000)
#   zset          ZADD z:K N member:NNNNNN        (integer scores 0, 1, 2, ...)
#   zsetfrac      ZADD f:K N/2 member:NNNNNN      (scores in 0.5 steps: 0, 0.5, 1, 1.5, ...)
#   stream        XADD st:K <N+1>-0 field value:N (one entry per command, explicit IDs)
#   streamevents  XADD ev:K <N+1>-0 event completed jobId N prev active
#                                                 (three fields, like a job queue's event log)
#   streamgroup   as stream (sg:K), plus a consumer group created first (XGROUP CREATE sg:K g $
#                 MKSTREAM) and XREADGROUP GROUP g c COUNT 100 STREAMS sg:K > after every 100
#                 entries: every entry is delivered and left pending (unacknowledged), so the
#                 difference from `stream` is the cost of the pending-entries list
# Each hash, set and sorted set is written with commands of 100 elements, so no single command
# converts it early; streams get one XADD per entry (an element is an entry).
# Sorted-set members go in in a shuffled order (fixed seed, the same for both servers), so the
# ordered structures are measured as random inserts leave them, not as an append-only build;
# ZSET_ORDER=ascending inserts them in score order instead.
#
# Usage: bench/collection-memory.sh                      (10,000 x 100 and 10 x 100,000 elements)
#        KEYS_SMALL=200 KEYS_LARGE=1 bench/collection-memory.sh
#        CASES="hash set" SIZES="100" bench/collection-memory.sh
#        CASES="zset zsetfrac" bench/collection-memory.sh
#        CASES="stream streamevents streamgroup" bench/collection-memory.sh
# Environment: KEYS_SMALL KEYS_LARGE CASES SIZES ZSET_ORDER LOAD_TIMEOUT SETTLE SERVER_CPU CLIENT_CPU
#              REDIS_BIN REDOUBT_BIN OUT_DIR
# Needs a release build: nice -n 19 cargo build --release -p redoubt-server
# Output: a table on stdout; summary.csv and report.txt under
#         bench/out/collection-memory-<timestamp>/ (bench/out/collection-memory-latest links it).
set -euo pipefail

# shellcheck source-path=SCRIPTDIR source=lib/common.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib/common.sh"

KEYS_SMALL=${KEYS_SMALL:-10000}
KEYS_LARGE=${KEYS_LARGE:-10}
CASES=${CASES:-hash set intset zset zsetfrac stream streamevents streamgroup}
ZSET_ORDER=${ZSET_ORDER:-shuffled}  # insertion order of sorted-set members: shuffled | ascending
SIZES=${SIZES:-100 100000}
LOAD_TIMEOUT=${LOAD_TIMEOUT:-300}
SETTLE=${SETTLE:-2}              # seconds to let the servers settle before each INFO read
OUT_DIR=${OUT_DIR:-$BENCH_DIR/out}
KINDS=(redis redoubt)

for n in "$KEYS_SMALL" "$KEYS_LARGE"; do
  [[ $n =~ ^[1-9][0-9]*$ && $n -le 100000 ]] || die "KEYS_SMALL and KEYS_LARGE must be 1..100000"
done
for c in $CASES; do
  case $c in
    hash | set | intset | zset | zsetfrac | stream | streamevents | streamgroup) ;;
    *) die "unknown case '$c' (hash, set, intset, zset, zsetfrac, stream, streamevents, streamgroup)" ;;
  esac
done
[[ $ZSET_ORDER == shuffled || $ZSET_ORDER == ascending ]] ||
  die "ZSET_ORDER must be shuffled or ascending"
for s in $SIZES; do
  [[ $s == 100 || $s == 100000 ]] || die "unknown size '$s' (100, 100000)"
done

keys_for() { if [[ $1 == 100 ]]; then echo "$KEYS_SMALL"; else echo "$KEYS_LARGE"; fi; }

# prefix_of CASE: the key prefix of a case's keys.
prefix_of() {
  case $1 in
    hash) echo h ;; set) echo s ;; intset) echo i ;; zset) echo z ;; zsetfrac) echo f ;;
    stream) echo st ;; streamevents) echo ev ;; streamgroup) echo sg ;;
  esac
}

# gen_resp CASE SIZE KEYS FILE [WARMUP]: the RESP commands that build KEYS collections of SIZE
# elements; with WARMUP, about 300 such commands into database 1 instead (at least one key).
gen_resp() {
  python3 - "$1" "$2" "$3" "$4" "${5:-}" "$ZSET_ORDER" "$(prefix_of "$1")" <<'PY'
import random, sys
case, size, keys, path, warmup = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), sys.argv[4], sys.argv[5]
zset_order, prefix = sys.argv[6], sys.argv[7].encode()
stream = case.startswith("stream")
def score(i):
    # zset: 0, 1, 2, ...; zsetfrac: 0, 0.5, 1, 1.5, ... (shortest form, as Redis would reply)
    if case == "zset":
        return b"%d" % i
    return b"%d" % (i // 2) if i % 2 == 0 else b"%d.5" % (i // 2)
def cmd(args):
    out = [b"*%d\r\n" % len(args)]
    for a in args:
        out.append(b"$%d\r\n%s\r\n" % (len(a), a))
    return b"".join(out)
with open(path, "wb") as f:
    if warmup:
        f.write(cmd([b"SELECT", b"1"]))
        keys = max(1, 300 // (size if stream else (size + 99) // 100))
    for k in range(keys):
        if stream:
            # one XADD per entry, ID N+1-0; streamgroup: a group first, and after every 100
            # entries one XREADGROUP that delivers them to consumer c (they stay pending)
            key = b"%s:%d" % (prefix, k)
            if case == "streamgroup":
                f.write(cmd([b"XGROUP", b"CREATE", key, b"g", b"$", b"MKSTREAM"]))
            for i in range(size):
                if case == "streamevents":
                    fields = [b"event", b"completed", b"jobId", b"%d" % i, b"prev", b"active"]
                else:
                    fields = [b"field", b"value:%d" % i]
                f.write(cmd([b"XADD", key, b"%d-0" % (i + 1)] + fields))
                if case == "streamgroup" and (i + 1) % 100 == 0:
                    f.write(cmd([b"XREADGROUP", b"GROUP", b"g", b"c", b"COUNT", b"100",
                                 b"STREAMS", key, b">"]))
            continue
        order = list(range(size))
        if case.startswith("zset") and zset_order == "shuffled":
            random.Random(k).shuffle(order)
        for lo in range(0, size, 100):
            hi = min(size, lo + 100)
            if case == "hash":
                args = [b"HSET", b"h:%d" % k]
                for i in range(lo, hi):
                    args += [b"field:%d" % i, b"value:%d" % i]
            elif case == "set":
                args = [b"SADD", b"s:%d" % k] + [b"member:%d" % i for i in range(lo, hi)]
            elif case == "intset":
                args = [b"SADD", b"i:%d" % k] + [b"%d" % i for i in range(lo, hi)]
            else:
                args = [b"ZADD", b"%s:%d" % (b"z" if case == "zset" else b"f", k)]
                for i in order[lo:hi]:
                    args += [score(i), b"member:%06d" % i]
            f.write(cmd(args))
PY
}

commands_in() { # commands_in CASE SIZE KEYS
  case $1 in
    stream | streamevents) echo $(($2 * $3)) ;;
    streamgroup) echo $(((1 + $2 + $2 / 100) * $3)) ;;
    *) echo $(((($2 + 99) / 100) * $3)) ;;
  esac
}

# stream_entry CASE N: entry N (0-based) as redis-cli prints it from XRANGE, joined by spaces.
stream_entry() {
  if [[ $1 == streamevents ]]; then
    echo "$(($2 + 1))-0 event completed jobId $2 prev active "
  else
    echo "$(($2 + 1))-0 field value:$2 "
  fi
}

declare -A R # R[case:size:kind:metric]

measure() {
  local case=$1 size=$2 kind=$3 file=$4 warm=$5 keys logfile out expected count key prefix enc
  keys=$(keys_for "$size")
  logfile=$RUN_DIR/logs/$kind-$case-$size.log
  start_server "$kind" "$logfile"
  out=$(timeout -k 5 "$LOAD_TIMEOUT" redis-cli -h 127.0.0.1 -p "$SRV_PORT" --pipe <"$warm" 2>&1) ||
    die "$kind: warm-up load failed: $out"
  [[ $out == *"errors: 0,"* ]] || die "$kind ($case/$size): warm-up failed: ${out//$'\n'/ | }"
  sleep "$SETTLE"
  R[$case:$size:$kind:mem0]=$(info_field "$SRV_PORT" memory used_memory)
  out=$(timeout -k 5 "$LOAD_TIMEOUT" taskset -c "$CLIENT_CPU" \
    redis-cli -h 127.0.0.1 -p "$SRV_PORT" --pipe <"$file" 2>&1) ||
    die "$kind: redis-cli --pipe failed or timed out after ${LOAD_TIMEOUT}s: $out"
  expected=$(commands_in "$case" "$size" "$keys")
  [[ $out == *"errors: 0, replies: $expected"* ]] ||
    die "$kind ($case/$size): unexpected redis-cli --pipe result: ${out//$'\n'/ | }"
  prefix=$(prefix_of "$case")
  for key in "$prefix:0" "$prefix:$((keys - 1))"; do
    case $case in
      hash) count=$(cli "$SRV_PORT" HLEN "$key") ;;
      zset*) count=$(cli "$SRV_PORT" ZCARD "$key") ;;
      stream*) count=$(cli "$SRV_PORT" XLEN "$key") ;;
      *) count=$(cli "$SRV_PORT" SCARD "$key") ;;
    esac
    [[ $count == "$size" ]] || die "$kind ($case/$size): $key holds '$count' elements, expected $size"
    if [[ $case == streamgroup ]]; then # every entry delivered and still pending
      count=$(cli "$SRV_PORT" XPENDING "$key" g | head -n1)
      [[ $count == "$size" ]] ||
        die "$kind ($case/$size): XPENDING $key g counts '$count' entries, expected $size"
    fi
  done
  if [[ $case == stream* ]]; then # first and last entry, IDs and fields as sent
    out=$(cli "$SRV_PORT" XRANGE "$prefix:0" - + COUNT 1 | tr '\n' ' ')
    expected=$(stream_entry "$case" 0)
    [[ $out == "$expected" ]] ||
      die "$kind ($case/$size): XRANGE $prefix:0 - + COUNT 1 gave '$out', expected '$expected'"
    out=$(cli "$SRV_PORT" XREVRANGE "$prefix:0" + - COUNT 1 | tr '\n' ' ')
    expected=$(stream_entry "$case" $((size - 1)))
    [[ $out == "$expected" ]] ||
      die "$kind ($case/$size): XREVRANGE $prefix:0 + - COUNT 1 gave '$out', expected '$expected'"
  fi
  if [[ $case == zset* ]]; then # the scores went in as intended (and in the same order on both)
    out=$(cli "$SRV_PORT" ZRANGE "$prefix:0" 0 2 WITHSCORES | tr '\n' ' ')
    if [[ $case == zset ]]; then expected="member:000000 0 member:000001 1 member:000002 2 "
    else expected="member:000000 0 member:000001 0.5 member:000002 1 "; fi
    [[ $out == "$expected" ]] ||
      die "$kind ($case/$size): ZRANGE $prefix:0 0 2 WITHSCORES gave '$out', expected '$expected'"
  fi
  enc=$(cli "$SRV_PORT" OBJECT ENCODING "$prefix:0")
  [[ $(cli "$SRV_PORT" DBSIZE) == "$keys" ]] || die "$kind ($case/$size): DBSIZE is not $keys"
  sleep "$SETTLE"
  R[$case:$size:$kind:mem1]=$(info_field "$SRV_PORT" memory used_memory)
  R[$case:$size:$kind:enc]=$enc
  R[$case:$size:$kind:elements]=$((size * keys))
  log "$case x $size / $kind: $keys keys ($enc), used_memory" \
    "${R[$case:$size:$kind:mem0]} -> ${R[$case:$size:$kind:mem1]}"
  stop_server "$SRV_PID"
}

# ---------------------------------------------------------------------------------------------
bench_init
bench_check_tools redis-cli

STAMP=$(date +%Y%m%d-%H%M%S)
RUN_DIR=$OUT_DIR/collection-memory-$STAMP
mkdir -p "$RUN_DIR/logs"
REPORT=$RUN_DIR/report.txt

{
  echo "== Redoubt vs Redis: memory per element of hashes, sets, sorted sets and streams =="
  echo "date         : $(date '+%Y-%m-%d %H:%M:%S %Z')"
  echo "script       : KEYS_SMALL=$KEYS_SMALL KEYS_LARGE=$KEYS_LARGE CASES=\"$CASES\" SIZES=\"$SIZES\" ZSET_ORDER=$ZSET_ORDER bench/collection-memory.sh"
  echo "server cmd   : taskset -c $SERVER_CPU {redis-server|redoubt-server} --port <port>$(printf ' %q' "${SERVER_FLAGS[@]}")   (fresh instance per case and server)"
  echo "data         : hash = HSET h:K field:N value:N; set = SADD s:K member:N; intset = SADD i:K N;"
  echo "               zset = ZADD z:K N member:NNNNNN; zsetfrac = ZADD f:K N/2 member:NNNNNN" \
    "(sorted-set members inserted $ZSET_ORDER)"
  echo "               stream = XADD st:K <N+1>-0 field value:N;" \
    "streamevents = XADD ev:K <N+1>-0 event completed jobId N prev active;"
  echo "               streamgroup = stream (sg:K) with group g, every entry delivered to consumer c" \
    "(XREADGROUP COUNT 100 >) and pending"
  echo "cpu          : $(cpu_model)"
  versions
} | tee "$REPORT"

for case in $CASES; do
  for size in $SIZES; do
    file=$BENCH_TMP/$case-$size.resp
    gen_resp "$case" "$size" "$(keys_for "$size")" "$file"
    gen_resp "$case" "$size" 0 "$file.warm" warmup
    for kind in "${KINDS[@]}"; do
      measure "$case" "$size" "$kind" "$file" "$file.warm"
    done
    rm -f "$file" "$file.warm"
  done
done

DATA=$RUN_DIR/raw.txt
for k in "${!R[@]}"; do printf '%s=%s\n' "$k" "${R[$k]}"; done | sort >"$DATA"

python3 - "$DATA" "$RUN_DIR" "$CASES" "$SIZES" <<'PY' | tee -a "$REPORT"
import csv, sys
data_path, run_dir, cases, sizes = sys.argv[1], sys.argv[2], sys.argv[3].split(), sys.argv[4].split()
R = {}
for line in open(data_path):
    k, _, v = line.rstrip("\n").partition("=")
    R[k] = v
rows = []
for case in cases:
    for size in sizes:
        row = {"case": case, "size": int(size)}
        for kind in ("redis", "redoubt"):
            p = "%s:%s:%s:" % (case, size, kind)
            delta = int(R[p + "mem1"]) - int(R[p + "mem0"])
            row[kind] = delta / int(R[p + "elements"])
            row[kind + "_enc"] = R[p + "enc"]
            row[kind + "_delta"] = delta
        row["elements"] = int(R["%s:%s:redis:elements" % (case, size)])
        row["ratio"] = row["redoubt"] / row["redis"] if row["redis"] > 0 else None
        rows.append(row)
with open(run_dir + "/summary.csv", "w", newline="") as f:
    w = csv.writer(f)
    w.writerow(["case", "elements_per_key", "elements", "redis_bytes_per_element", "redoubt_bytes_per_element",
                "ratio", "redis_encoding", "redoubt_encoding", "redis_delta", "redoubt_delta"])
    for r in rows:
        w.writerow([r["case"], r["size"], r["elements"], "%.2f" % r["redis"], "%.2f" % r["redoubt"],
                    "" if r["ratio"] is None else "%.3f" % r["ratio"], r["redis_enc"], r["redoubt_enc"],
                    r["redis_delta"], r["redoubt_delta"]])
out = ["", "Bytes per element = (used_memory after - before) / elements; ratio = Redoubt / Redis.", ""]
hdr = "%-12s %10s %10s  %9s %9s %7s   %-22s" % ("case", "per key", "elements", "Redis", "Redoubt", "ratio",
                                            "encodings (Redis/ours)")
out += [hdr, "-" * len(hdr)]
for r in rows:
    out.append("%-12s %10s %10s  %9.1f %9.1f %7s   %s/%s" % (
        r["case"], format(r["size"], ","), format(r["elements"], ","), r["redis"], r["redoubt"],
        "-" if r["ratio"] is None else "%.3f" % r["ratio"], r["redis_enc"], r["redoubt_enc"]))
out.append("")
out.append("files: %s/{report.txt,summary.csv}" % run_dir)
print("\n".join(out))
PY

ln -sfn "$(basename "$RUN_DIR")" "$OUT_DIR/collection-memory-latest"
