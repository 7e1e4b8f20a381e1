#!/usr/bin/env bash
# bench/vs-redis.sh: redis-benchmark against Redoubt and redis-server, side by side.
#
# Each server runs pinned to one CPU (SERVER_CPU, default 1) and redis-benchmark to another
# (CLIENT_CPU, default 0). For every round and pipeline depth, Redis and then Redoubt are each
# started fresh on a free loopback port with the same flags, the tests run one redis-benchmark
# invocation each (in redis-benchmark's own order, on that one server instance), and the server
# is killed: A B A B ... Tests that a server does not support (probed once with redis-cli before
# the run, or failing at run time) are reported as "n/a" instead of a ratio.
#
# Besides redis-benchmark's built-in tests (-t), these tests are defined here:
#   zrange  ZRANGE bench:zrange 0 9 WITHSCORES, as a custom redis-benchmark command, on a key
#           pre-filled with ZRANGE_SIZE (1000) members member:NNNNNN with scores 0..999.
#   xadd    XADD bench:st:__rand_int__ * f v (auto IDs, one small field), with -r XADD_KEYS (10)
#           instead of -r KEYSPACE, so the entries go onto XADD_KEYS streams of about
#           REQUESTS/XADD_KEYS entries each (no trimming; XADD_MAXLEN=N adds MAXLEN ~ N).
#   xreadgroup  XREADGROUP GROUP g c COUNT 1 STREAMS bench:xrg >, on a stream pre-filled with
#           REQUESTS + CLIENTS x (largest depth) entries "f v" (more than redis-benchmark can read,
#           so it is never drained; checked after the run) and group g created at 0. Each read delivers
#           one new entry, which stays pending: the PEL grows to REQUESTS entries, as for a
#           consumer that has not acknowledged yet (XREADGROUP_NOACK=1 adds NOACK instead).
#   brpop   producer/consumer: BRPOP_CLIENTS consumers run "BRPOP bench:bq 0" while CLIENTS
#           producers run "LPUSH bench:bq <DATASIZE bytes>", both redis-benchmark on CLIENT_CPU,
#           exactly N items each way (N = BRPOP_ITEMS rounded down to a multiple of -P); reported
#           as items/s delivered = N / (producer start .. consumer finish).
# Pop tests (lpop, rpop, spop, zpopmin) first top their key up to REQUESTS elements, so the key is
# never empty during the run (redis-benchmark alone would pop an empty key for part of it).
#
# Usage: bench/vs-redis.sh            (full run: 5 rounds x -P 1,16 x 1,000,000 requests/test)
#        bench/vs-redis.sh --summarize bench/out/vs-redis-<stamp>   (redo the tables of a run)
#        REQUESTS=100000 ROUNDS=2 bench/vs-redis.sh           (quick run)
#        TESTS=set,get PIPELINES="1 16 64" bench/vs-redis.sh
#        TESTS=zadd,zrange,zpopmin,brpop bench/vs-redis.sh
#        TESTS=xadd,xreadgroup PIPELINES="1 16" ROUNDS=3 bench/vs-redis.sh
# Environment: ROUNDS REQUESTS TESTS PIPELINES CLIENTS KEYSPACE DATASIZE TEST_TIMEOUT OTHER_MAX
#              ZRANGE_SIZE BRPOP_ITEMS BRPOP_CLIENTS XADD_KEYS XADD_MAXLEN XREADGROUP_NOACK
#              QUIET_WAIT QUIET_PCT SERVER_CPU CLIENT_CPU REDIS_BIN REDOUBT_BIN OUT_DIR
# Output: a table on stdout; raw.csv, summary.csv, summary.json and report.txt under
#         bench/out/vs-redis-<timestamp>/ (bench/out/vs-redis-latest points at the newest).
set -euo pipefail

# shellcheck source-path=SCRIPTDIR source=lib/common.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib/common.sh"

ROUNDS=${ROUNDS:-5}
REQUESTS=${REQUESTS:-1000000}
TESTS=${TESTS:-set,get,incr,lpush,lpop,rpop,sadd,hset,zadd,zrange,zpopmin,xadd,xreadgroup,brpop}
PIPELINES=${PIPELINES:-1 16}
CLIENTS=${CLIENTS:-50}
KEYSPACE=${KEYSPACE:-1000000}
DATASIZE=${DATASIZE:-64}
TEST_TIMEOUT=${TEST_TIMEOUT:-600}   # seconds for one redis-benchmark invocation
OTHER_MAX=${OTHER_MAX:-20}          # % of a core used by others above which a sample is noisy
ZRANGE_SIZE=${ZRANGE_SIZE:-1000}    # members in bench:zrange for the zrange test
BRPOP_ITEMS=${BRPOP_ITEMS:-$REQUESTS}  # items pushed and popped by the brpop test
BRPOP_CLIENTS=${BRPOP_CLIENTS:-$CLIENTS} # consumers of the brpop test (producers: CLIENTS)
XADD_KEYS=${XADD_KEYS:-10}          # streams the xadd test appends to (its -r)
XADD_MAXLEN=${XADD_MAXLEN:-0}       # xadd: 0 = no trimming, N = XADD ... MAXLEN ~ N
XREADGROUP_NOACK=${XREADGROUP_NOACK:-0} # xreadgroup: 1 = NOACK (no pending entries)
OUT_DIR=${OUT_DIR:-$BENCH_DIR/out}
KINDS=(redis redoubt)               # A B order within a round

[[ $ROUNDS =~ ^[1-9][0-9]*$ ]] || die "ROUNDS must be a positive integer"
[[ $REQUESTS =~ ^[1-9][0-9]*$ ]] || die "REQUESTS must be a positive integer"
read -r -a PIPES <<<"$PIPELINES"
[[ ${#PIPES[@]} -gt 0 ]] || die "PIPELINES is empty"
for p in "${PIPES[@]}"; do [[ $p =~ ^[1-9][0-9]*$ ]] || die "bad pipeline depth '$p'"; done
for v in ZRANGE_SIZE BRPOP_ITEMS BRPOP_CLIENTS CLIENTS XADD_KEYS; do
  [[ ${!v} =~ ^[1-9][0-9]*$ ]] || die "$v must be a positive integer"
done
[[ $XADD_MAXLEN =~ ^(0|[1-9][0-9]*)$ ]] || die "XADD_MAXLEN must be 0 or a positive integer"
[[ $XREADGROUP_NOACK == 0 || $XREADGROUP_NOACK == 1 ]] || die "XREADGROUP_NOACK must be 0 or 1"

# redis-benchmark's own test order (pops after pushes); unknown names run last, as given.
# zrange, xadd, xreadgroup and brpop are this script's own tests (see the header), not
# redis-benchmark -t names.
CANONICAL=(ping_inline ping_mbulk ping set get incr lpush rpush lpop rpop sadd hset spop zadd
  zpopmin zrange evalsha lrange lrange_100 lrange_300 lrange_500 lrange_600 mset xadd xreadgroup
  brpop)
IFS=',' read -r -a REQ_TESTS <<<"${TESTS,,}"
TOKENS=()
for c in "${CANONICAL[@]}"; do
  for t in "${REQ_TESTS[@]}"; do [[ $t == "$c" ]] && TOKENS+=("$c") && break; done
done
for t in "${REQ_TESTS[@]}"; do
  [[ -n $t ]] || continue
  [[ " ${CANONICAL[*]} " == *" $t "* ]] || TOKENS+=("$t")
done
[[ ${#TOKENS[@]} -gt 0 ]] || die "TESTS is empty"

# The commands redis-benchmark sends for a test, for the redis-cli probe (one per line).
probe_cmds() {
  case $1 in
    ping*) echo "PING" ;;
    set) echo "SET __probe:str v" ;;
    get) echo "GET __probe:str" ;;
    incr) echo "INCR __probe:ctr" ;;
    lpush) echo "LPUSH __probe:list v" ;;
    rpush) echo "RPUSH __probe:list v" ;;
    # pop tests also need their push: the key is topped up with it before the test runs
    lpop) printf '%s\n' "LPUSH __probe:list v" "LPOP __probe:list" ;;
    rpop) printf '%s\n' "LPUSH __probe:list v" "RPOP __probe:list" ;;
    sadd) echo "SADD __probe:set v" ;;
    spop) printf '%s\n' "SADD __probe:set v" "SPOP __probe:set" ;;
    hset) echo "HSET __probe:hash f v" ;;
    zadd) echo "ZADD __probe:zset 0 m" ;;
    zpopmin) printf '%s\n' "ZADD __probe:zset 0 m" "ZPOPMIN __probe:zset" ;;
    zrange) printf '%s\n' "ZADD __probe:zr 1 a 2 b" "ZRANGE __probe:zr 0 9 WITHSCORES" ;;
    evalsha) printf '%s\n' "SCRIPT LOAD $EVAL_SCRIPT" "EVALSHA $EVAL_SHA 1 __probe:ev" ;;
    brpop) printf '%s\n' "LPUSH __probe:bq v" "BRPOP __probe:bq 1" ;;
    xadd) echo "XADD __probe:st ${XADD_TRIM[*]} * f v" ;;
    xreadgroup) printf '%s\n' "XADD __probe:xg 1-0 f v" "XGROUP CREATE __probe:xg g 0" \
      "XREADGROUP GROUP g c COUNT 1 ${XRG_NOACK[*]} STREAMS __probe:xg >" ;;
    lrange*) printf '%s\n' "LPUSH __probe:lr v" "LRANGE __probe:lr 0 99" ;;
    mset) echo "MSET __probe:a 1 __probe:b 2" ;;
    *) ;; # unknown to the probe: judged by the run itself
  esac
}

declare -A STATUS # STATUS[kind:token] = ok | unsupported; DETAIL = message
declare -A DETAIL

probe_server() {
  local kind=$1 token cmd out words
  start_server "$kind" "$RUN_DIR/logs/$kind-probe.log"
  for token in "${TOKENS[@]}"; do
    STATUS[$kind:$token]=ok
    DETAIL[$kind:$token]=""
    [[ -n $(probe_cmds "$token") ]] || DETAIL[$kind:$token]="not probed (test unknown to this script)"
    while IFS= read -r cmd; do
      [[ -n $cmd ]] || continue
      read -r -a words <<<"$cmd"
      if ! out=$(cli "$SRV_PORT" --no-raw "${words[@]}" 2>&1); then
        STATUS[$kind:$token]=unsupported
        DETAIL[$kind:$token]="redis-cli failed: ${out//$'\n'/ }"
        break
      fi
      if [[ $out == "(error)"* ]]; then
        STATUS[$kind:$token]=unsupported
        DETAIL[$kind:$token]="$cmd -> ${out//$'\n'/ }"
        break
      fi
    done < <(probe_cmds "$token")
  done
  stop_server "$SRV_PID"
}

cpu_ticks() { # utime+stime of PID in clock ticks
  sed 's/.*) //' "/proc/$1/stat" 2>/dev/null | awk '{ print $12 + $13 }' || echo 0
}

csv_quote() { local s=${1//\"/\'}; printf '"%s"' "${s//$'\n'/ }"; }

EMPTY_ROW=',,,,,,,'

ZRANGE_KEY=bench:zrange
BQ_KEY=bench:bq
# Result names of this script's own tests (redis-benchmark would title a custom command with its
# whole command line).
ZRANGE_TITLE="ZRANGE 0 9 WITHSCORES"
# evalsha: a small script (no spaces: the probe splits on them), loaded before the run, called
# by its SHA1 on random keys.
EVAL_SCRIPT="return(redis.call('incr',KEYS[1]))"
EVAL_SHA=$(printf '%s' "$EVAL_SCRIPT" | sha1sum | cut -d' ' -f1)
EVAL_TITLE="EVALSHA (INCR script)"
BRPOP_TITLE="BRPOP<-LPUSH items"
# xadd: XADD_TRIM is empty or (MAXLEN ~ N); xreadgroup: XRG_NOACK is empty or (NOACK).
XADD_KEY="bench:st:__rand_int__"
XADD_TRIM=()
((XADD_MAXLEN == 0)) || XADD_TRIM=(MAXLEN '~' "$XADD_MAXLEN")
XADD_TITLE="XADD${XADD_TRIM[*]:+ ${XADD_TRIM[*]}} * f v"
XRG_KEY=bench:xrg
# Entries in bench:xrg: redis-benchmark -n REQUESTS -P depth sends at most REQUESTS + depth - 1
# commands, so this many are never all read; the same at every depth, so only the depth differs.
XRG_FILL=$REQUESTS
for p in "${PIPES[@]}"; do
  ((REQUESTS + CLIENTS * p <= XRG_FILL)) || XRG_FILL=$((REQUESTS + CLIENTS * p))
done
XRG_NOACK=()
((XREADGROUP_NOACK == 0)) || XRG_NOACK=(NOACK)
XRG_TITLE="XREADGROUP COUNT 1${XRG_NOACK[*]:+ ${XRG_NOACK[*]}} >"
PRODUCER_TITLE="LPUSH producer"

# gen_fill TYPE KEY COUNT: RESP on stdout that adds COUNT elements to KEY, 1000 per command.
#   list    LPUSH KEY <DATASIZE bytes>...      set     SADD KEY fill:NNNNNNNNNNNN...
#   zset    ZADD KEY i fill:NNNNNNNNNNNN...    zrange  ZADD KEY i member:NNNNNN...  (i = 0..COUNT-1)
#   stream  XADD KEY <i+1>-0 f v               (one entry per command)
gen_fill() {
  python3 - "$1" "$2" "$3" "$DATASIZE" <<'PY'
import sys
typ, key, count, dsize = sys.argv[1], sys.argv[2].encode(), int(sys.argv[3]), int(sys.argv[4])
out = sys.stdout.buffer
def cmd(args):
    return b"*%d\r\n" % len(args) + b"".join(b"$%d\r\n%s\r\n" % (len(a), a) for a in args)
val = b"x" * dsize
for lo in range(0, count, 1000):
    hi = min(count, lo + 1000)
    if typ == "stream":
        out.write(b"".join(cmd([b"XADD", key, b"%d-0" % (i + 1), b"f", b"v"]) for i in range(lo, hi)))
        continue
    if typ == "list":
        args = [b"LPUSH", key] + [val] * (hi - lo)
    elif typ == "set":
        args = [b"SADD", key] + [b"fill:%012d" % i for i in range(lo, hi)]
    else:
        fmt = b"fill:%012d" if typ == "zset" else b"member:%06d"
        args = [b"ZADD", key]
        for i in range(lo, hi):
            args += [b"%d" % i, fmt % i]
    out.write(cmd(args))
PY
}

# prepare_test TOKEN: sets up the keys TOKEN needs on the server at SRV_PORT, before its timed run.
#   lpop, rpop, spop, zpopmin: top the popped key up to REQUESTS elements, so that it never runs
#     empty (redis-benchmark alone pops more than its push tests leave there);
#   zrange: bench:zrange with exactly ZRANGE_SIZE members;  brpop: an empty bench:bq;
#   xreadgroup: a new bench:xrg of XRG_FILL entries, with group g at 0.
# Logs what it did to prefill.txt; on failure prints why and returns 1.
prepare_test() {
  local token=$1 type key size_cmd target have need now out
  case $token in
    lpop | rpop) type=list key=mylist size_cmd=LLEN target=$REQUESTS ;;
    spop) type=set key=myset size_cmd=SCARD target=$REQUESTS ;;
    zpopmin) type=zset key=myzset size_cmd=ZCARD target=$REQUESTS ;;
    zrange) type=zrange key=$ZRANGE_KEY size_cmd=ZCARD target=$ZRANGE_SIZE ;;
    brpop) type="" key=$BQ_KEY ;;
    xreadgroup) type=stream key=$XRG_KEY size_cmd=XLEN target=$XRG_FILL ;;
    evalsha)
      out=$(cli "$SRV_PORT" SCRIPT LOAD "$EVAL_SCRIPT" 2>&1)
      [[ $out == "$EVAL_SHA" ]] || { echo "SCRIPT LOAD -> $out"; return 1; }
      return 0 ;;
    *) return 0 ;;
  esac
  if [[ $token == zrange || $token == brpop || $token == xreadgroup ]]; then
    out=$(cli "$SRV_PORT" DEL "$key" 2>&1) || { echo "DEL $key failed: $out"; return 1; }
    [[ -n $type ]] || return 0
  fi
  have=$(cli "$SRV_PORT" "$size_cmd" "$key" 2>&1)
  [[ $have =~ ^[0-9]+$ ]] || { echo "$size_cmd $key -> $have"; return 1; }
  need=$((target - have))
  if ((need > 0)); then
    out=$(gen_fill "$type" "$key" "$need" |
      timeout -k 5 "$TEST_TIMEOUT" redis-cli -h 127.0.0.1 -p "$SRV_PORT" --pipe 2>&1) ||
      { echo "filling $key: redis-cli --pipe failed: ${out//$'\n'/ | }"; return 1; }
    [[ $out == *"errors: 0,"* ]] || { echo "filling $key: ${out//$'\n'/ | }"; return 1; }
  fi
  now=$(cli "$SRV_PORT" "$size_cmd" "$key" 2>&1)
  [[ $now =~ ^[0-9]+$ && $now -ge $target ]] ||
    { echo "filling $key: $size_cmd is '$now', expected >= $target"; return 1; }
  if [[ $token == xreadgroup ]]; then
    out=$(cli "$SRV_PORT" XGROUP CREATE "$key" g 0 2>&1)
    [[ $out == OK ]] || { echo "XGROUP CREATE $key g 0 -> $out"; return 1; }
  fi
  printf '%s %s -P %s %s: %s had %s elements, filled to %s\n' "$CUR_ROUND" "$CUR_KIND" \
    "$CUR_PIPE" "$token" "$key" "$have" "$now" >>"$RUN_DIR/prefill.txt"
}

# xrg_lag: entries of bench:xrg not yet delivered to group g (XINFO GROUPS' lag).
xrg_lag() {
  cli "$SRV_PORT" XINFO GROUPS "$XRG_KEY" 2>&1 | awk 'prev == "lag" { print; exit } { prev = $0 }'
}

# run_brpop PIPE OUT ERR: the producer/consumer test against SRV_PORT. N = BRPOP_ITEMS rounded down
# to a multiple of PIPE (redis-benchmark then sends exactly N commands). BRPOP_CLIENTS consumers
# ("BRPOP bench:bq 0", N replies) start first; once they are all blocked, CLIENTS producers
# ("LPUSH bench:bq <DATASIZE bytes>", N requests) start. Every item pushed is delivered to exactly
# one waiting BRPOP, so the consumers finish once all N items have been delivered. If they are
# still waiting 3 s after the producers finished with the queue empty (items lost, or a producer
# failed), a watchdog stops them (exit 125), and TEST_TIMEOUT bounds everything else (exit 124).
# Writes OUT (CSV: items/s delivered = N / (producer start .. consumer finish) with the consumers'
# BRPOP latencies, then the producers' own LPUSH row), ERR and OUT.time (client CPU seconds of
# both); returns the exit status.
run_brpop() {
  local pipe=$1 out=$2 err=$3 n cpid ppid wpid rc=0 prc=0 t0 t1 k blocked want value line rate
  n=$((BRPOP_ITEMS / pipe * pipe))
  ((n > 0)) || n=$pipe
  value=$(printf "%${DATASIZE}s" "" | tr ' ' x)
  rm -f "$out.starved"
  (
    time timeout -k 5 "$TEST_TIMEOUT" taskset -c "$CLIENT_CPU" redis-benchmark -h 127.0.0.1 \
      -p "$SRV_PORT" -c "$BRPOP_CLIENTS" -n "$n" -P "$pipe" --csv BRPOP "$BQ_KEY" 0 \
      >"$out.consumer" 2>"$err.consumer" </dev/null
  ) 2>"$out.consumer.time" &
  cpid=$!
  BENCH_JOBS+=("$cpid")
  # Wait (at most 10 s) until the consumers are all blocked: clients with something to send.
  want=$((n / pipe < BRPOP_CLIENTS ? n / pipe : BRPOP_CLIENTS))
  for ((k = 0; k < 100; k++)); do
    kill -0 "$cpid" 2>/dev/null || break
    blocked=$(info_field "$SRV_PORT" clients blocked_clients 2>/dev/null || true)
    [[ $blocked =~ ^[0-9]+$ && $blocked -ge $want ]] && break
    sleep 0.1
  done
  ((k < 100)) || log "  brpop: only ${blocked:-?} of $want consumers blocked after 10 s; going on"
  t0=$(date +%s%N)
  (
    time timeout -k 5 "$TEST_TIMEOUT" taskset -c "$CLIENT_CPU" redis-benchmark -h 127.0.0.1 \
      -p "$SRV_PORT" -c "$CLIENTS" -n "$n" -P "$pipe" --csv LPUSH "$BQ_KEY" "$value" \
      >"$out.producer" 2>"$err.producer" </dev/null
  ) 2>"$out.producer.time" &
  ppid=$!
  BENCH_JOBS+=("$ppid")
  wait "$ppid" || prc=$?
  (
    empty=0
    while kill -0 "$cpid" 2>/dev/null; do
      if [[ $(cli "$SRV_PORT" LLEN "$BQ_KEY" 2>/dev/null) == 0 ]]; then
        empty=$((empty + 1))
      else
        empty=0
      fi
      if ((empty >= 3)); then
        echo "starved" >"$out.starved"
        kill_children "$cpid"
        break
      fi
      sleep 1
    done
  ) &
  wpid=$!
  BENCH_JOBS+=("$wpid")
  wait "$cpid" || rc=$?
  t1=$(date +%s%N)
  kill_children "$wpid"
  kill "$wpid" 2>/dev/null || true
  wait "$wpid" 2>/dev/null || true
  BENCH_JOBS=()
  cat "$err.consumer" "$err.producer" >"$err" 2>/dev/null || true
  awk '{ u += $1; s += $2 } END { printf "%.3f %.3f\n", u, s }' \
    <(tail -qn1 "$out.consumer.time" "$out.producer.time" 2>/dev/null) >"$out.time"
  : >"$out"
  if [[ -e $out.starved ]]; then
    rc=125
  elif ((rc == 0 && prc != 0)); then
    rc=$prc
  fi
  if ((rc == 0)); then
    rate=$(awk -v n="$n" -v a="$t0" -v b="$t1" 'BEGIN { printf "%.2f", n / ((b - a) / 1e9) }')
    line=$(grep -m1 '^"BRPOP' "$out.consumer" | tr -d '\r') || true
    # "BRPOP bench:bq 0","<rps>",<latencies> -> "BRPOP<-LPUSH items","<items/s>",<latencies>
    [[ -z $line ]] || printf '"%s","%s",%s\n' "$BRPOP_TITLE" "$rate" "${line#*\",\"*\",}" >>"$out"
    line=$(grep -m1 '^"LPUSH' "$out.producer" | tr -d '\r') || true
    [[ -z $line ]] || printf '"%s",%s\n' "$PRODUCER_TITLE" "${line#*\",}" >>"$out"
  fi
  return "$rc"
}

# run_instance ROUND PIPELINE KIND: one fresh server, every test, one row per CSV line in raw.csv.
run_instance() {
  local round=$1 pipe=$2 kind=$3 token status detail rc out err t0 t1 c0 c1 b0 b1 cpu other wall
  local dead=""
  local prefix line rows args keyspace lag
  CUR_ROUND=$round CUR_PIPE=$pipe CUR_KIND=$kind
  wait_quiet
  start_server "$kind" "$RUN_DIR/logs/$kind-r$round-P$pipe.log"
  log "round $round/$ROUNDS  -P $pipe  $kind (pid $SRV_PID, port $SRV_PORT)"
  for token in "${TOKENS[@]}"; do
    status=${STATUS[$kind:$token]}
    detail=${DETAIL[$kind:$token]}
    if [[ -n $dead ]]; then
      status=skipped
      detail="server exited during $dead"
    fi
    if [[ $status == ok ]] && ! detail=$(prepare_test "$token"); then
      status=error
      detail="set-up failed: $detail"
      log "  $kind $token: $detail"
    fi
    if [[ $status != ok ]]; then
      printf '%s,%s,%s,%s,%s,%s,,,,%s\n' "$round" "$pipe" "$kind" "$token" "$status" \
        "$(csv_quote "$detail")" "$EMPTY_ROW" >>"$RAW"
      continue
    fi
    keyspace=$KEYSPACE
    case $token in
      zrange) args=(ZRANGE "$ZRANGE_KEY" 0 9 WITHSCORES) ;;
      evalsha) args=(EVALSHA "$EVAL_SHA" 1 "ev:__rand_int__") ;;
      xadd)
        keyspace=$XADD_KEYS
        args=(XADD "$XADD_KEY" "${XADD_TRIM[@]}" '*' f v) ;;
      xreadgroup) args=(XREADGROUP GROUP g c COUNT 1 "${XRG_NOACK[@]}" STREAMS "$XRG_KEY" '>') ;;
      *) args=(-t "$token") ;;
    esac
    out=$RUN_DIR/rb/$kind-r$round-P$pipe-$token.csv
    err=$RUN_DIR/rb/$kind-r$round-P$pipe-$token.err
    c0=$(cpu_ticks "$SRV_PID")
    b0=$(cpu_busy)
    t0=$(date +%s%N)
    rc=0
    if [[ $token == brpop ]]; then
      run_brpop "$pipe" "$out" "$err" || rc=$?
    else
      {
        time timeout --foreground -k 5 "$TEST_TIMEOUT" taskset -c "$CLIENT_CPU" redis-benchmark \
          -h 127.0.0.1 -p "$SRV_PORT" -c "$CLIENTS" -n "$REQUESTS" -r "$keyspace" -d "$DATASIZE" \
          -P "$pipe" --csv "${args[@]}" >"$out" 2>"$err" </dev/null
      } 2>"$out.time" || rc=$?
    fi
    t1=$(date +%s%N)
    b1=$(cpu_busy)
    c1=$(cpu_ticks "$SRV_PID")
    wall=$(awk -v a="$t0" -v b="$t1" 'BEGIN { printf "%.3f", (b - a) / 1e9 }')
    # server CPU and, for contamination, CPU used by anything but the server and redis-benchmark
    # (loopback softirq not charged to either shows up there too), both in % of one core.
    read -r cpu other < <(awk -v c=$((c1 - c0)) -v b=$((b1 - b0)) -v hz="$CLK_TCK" -v w="$wall" \
      -v cl="$(tail -n1 "$out.time")" 'BEGIN {
        split(cl, t, " "); o = (b / hz - c / hz - t[1] - t[2]) / w * 100
        printf "%.1f %.1f\n", (w > 0 ? 100 * c / hz / w : 0), (o > 0 ? o : 0) }')
    status=ok
    detail=""
    if ! kill -0 "$SRV_PID" 2>/dev/null; then
      status=crashed
      detail="server process exited during this test"
      dead=$token
    elif [[ $rc == 124 || $rc == 137 ]]; then
      status=timeout
      detail="no result after ${TEST_TIMEOUT}s"
    elif [[ $rc == 125 ]]; then
      status=starved
      detail="consumers still blocked 3 s after the producers finished, with the queue empty"
    elif grep -q 'Error from server' "$err" 2>/dev/null; then
      status=error
      detail=$(grep -m1 'Error from server' "$err")
    elif [[ $rc != 0 ]]; then
      status=error
      detail="redis-benchmark exit $rc: $(head -c 200 "$err")"
    elif [[ $token == xreadgroup ]]; then # every read must have delivered an entry
      lag=$(xrg_lag)
      printf '%s %s -P %s %s: after the run %s has %s entries not yet delivered\n' "$round" \
        "$kind" "$pipe" "$token" "$XRG_KEY" "$lag" >>"$RUN_DIR/prefill.txt"
      if ! [[ $lag =~ ^[1-9][0-9]*$ ]]; then
        status=error
        detail="$XRG_KEY drained (XINFO GROUPS lag '$lag'): some reads returned nothing"
      fi
    fi
    prefix="$round,$pipe,$kind,$token"
    rows=0
    if [[ $status == ok ]]; then
      while IFS= read -r line; do
        line=${line%$'\r'}
        [[ $line == '"'* && $line != '"test",'* ]] || continue
        # a custom command is titled with its command line; use a stable name instead
        [[ $token != zrange ]] || line="\"$ZRANGE_TITLE\",${line#*\",}"
        [[ $token != evalsha ]] || line="\"$EVAL_TITLE\",${line#*\",}"
        [[ $token != xadd ]] || line="\"$XADD_TITLE\",${line#*\",}"
        [[ $token != xreadgroup ]] || line="\"$XRG_TITLE\",${line#*\",}"
        printf '%s,ok,,%s,%s,%s,%s\n' "$prefix" "$cpu" "$other" "$wall" "$line" >>"$RAW"
        rows=$((rows + 1))
      done <"$out"
      if [[ $rows == 0 ]]; then
        status=norows
        detail="redis-benchmark printed no CSV result"
      fi
    fi
    if [[ $status != ok ]]; then
      log "  $kind $token: $status ($detail)"
      printf '%s,%s,%s,%s,%s,%s,%s\n' "$prefix" "$status" "$(csv_quote "$detail")" "$cpu" "$other" \
        "$wall" "$EMPTY_ROW" >>"$RAW"
    fi
  done
  stop_server "$SRV_PID"
}

# summarize RUN_DIR: the table (stdout), summary.csv, summary.json and results.txt from raw.csv.
# A sample is "noisy" when other processes used more than OTHER_MAX % of a core during it; noisy
# samples are left out of medians and ratios whenever a clean one exists for that test.
summarize() {
  python3 - "$1" "$OTHER_MAX" <<'PY' | tee "$1/results.txt"
import csv, json, os, statistics, sys

run_dir, other_max = sys.argv[1], float(sys.argv[2])
raw_path = os.path.join(run_dir, "raw.csv")
meta = {"raw_csv": raw_path, "other_max_pct": other_max}
try:
    for line in open(os.path.join(run_dir, "meta.env")):
        k, _, v = line.rstrip("\n").partition("=")
        meta[k.lower()] = v
except OSError:
    pass
rows = list(csv.DictReader(open(raw_path, newline="")))
rounds = int(meta.get("rounds") or max(int(r["round"]) for r in rows))
KINDS = ["redis", "redoubt"]
LAT = ["avg_ms", "min_ms", "p50_ms", "p95_ms", "p99_ms", "max_ms"]
NA = {
    "unsupported": "n/a (not supported)",
    "error": "n/a (error reply)",
    "timeout": "n/a (timeout)",
    "crashed": "n/a (server crashed)",
    "skipped": "n/a (server crashed earlier)",
    "norows": "n/a (no output)",
    "zero": "n/a (zero rps)",
    "starved": "n/a (consumers starved)",
}

def na_text(status):
    if status.startswith("needs:"):
        return "n/a (needs %s)" % status[6:].upper()
    return NA.get(status, "n/a (%s)" % status)

for r in rows:
    if r["status"] == "ok":
        try:
            if float(r["rps"]) <= 0:
                r["status"] = "zero"
        except ValueError:
            r["status"] = "norows"

def noisy(r):
    return r.get("other_cpu_pct") not in (None, "") and float(r["other_cpu_pct"]) > other_max

# Test names (redis-benchmark's CSV "test" column) seen per (pipeline, token), in order.
order, names = [], {}
for r in rows:
    key = (int(r["pipeline"]), r["token"])
    if key not in names:
        names[key] = []
        order.append(key)
    if r["status"] == "ok" and r["test"] not in names[key]:
        names[key].append(r["test"])

def med(xs):
    return statistics.median(xs) if xs else None

results = []
for key in sorted(order, key=lambda k: (k[0], order.index(k))):
    pipe, token = key
    for test in names[key] or [token.upper()]:
        entry = {"pipeline": pipe, "token": token, "test": test}
        ok_by, clean_by = {}, {}
        for kind in KINDS:
            mine = [r for r in rows if int(r["pipeline"]) == pipe and r["token"] == token
                    and r["server"] == kind]
            ok = {int(r["round"]): r for r in mine if r["status"] == "ok" and r["test"] == test}
            clean = {k: r for k, r in ok.items() if not noisy(r)}
            used = clean or ok
            fails = [r["status"] for r in mine if r["status"] != "ok"]
            ok_by[kind], clean_by[kind] = ok, clean
            s = {
                "rounds_ok": len(ok),
                "rounds_clean": len(clean),
                "rounds_used": sorted(used),
                "only_noisy": bool(ok) and not clean,
                "status": "ok" if ok and not fails else (
                    "partial" if ok else (max(set(fails), key=fails.count) if fails else "missing")),
                "failures": sorted(set(fails)),
                "detail": next((r["detail"] for r in mine if r["detail"]), ""),
                "rps_all": {k: float(ok[k]["rps"]) for k in sorted(ok)},
                "other_cpu_pct_all": {k: float(ok[k]["other_cpu_pct"] or 0) for k in sorted(ok)},
            }
            s["rps_median"] = med([float(used[k]["rps"]) for k in used])
            for l in LAT:
                s[l + "_median"] = med([float(used[k][l]) for k in used])
            s["server_cpu_pct_median"] = med(
                [float(used[k]["server_cpu_pct"]) for k in used if used[k]["server_cpu_pct"]])
            s["other_cpu_pct_median"] = med(
                [float(used[k]["other_cpu_pct"]) for k in used if used[k]["other_cpu_pct"]])
            entry[kind] = s
        both = sorted(set(clean_by["redis"]) & set(clean_by["redoubt"]))
        clean_pairs = bool(both)
        if not both:
            both = sorted(set(ok_by["redis"]) & set(ok_by["redoubt"]))
        ratios = {k: float(ok_by["redoubt"][k]["rps"]) / float(ok_by["redis"][k]["rps"])
                  for k in both}
        vals = list(ratios.values())
        entry["ratio"] = {
            "per_round": ratios,
            "clean": clean_pairs,
            "median": med(vals),
            "min": min(vals) if vals else None,
            "max": max(vals) if vals else None,
        }
        results.append(entry)

meta["rounds"] = rounds
json.dump({"meta": meta, "results": results}, open(run_dir + "/summary.json", "w"), indent=2)

def rd(x, n):
    return "" if x is None else round(x, n)

with open(run_dir + "/summary.csv", "w", newline="") as f:
    w = csv.writer(f)
    w.writerow(["pipeline", "test", "redis_status", "redoubt_status", "redis_rps_median",
                "redoubt_rps_median", "ratio_median", "ratio_min", "ratio_max", "ratio_rounds",
                "ratio_clean", "redis_p50_ms", "redoubt_p50_ms", "redis_p99_ms", "redoubt_p99_ms",
                "redis_cpu_pct", "redoubt_cpu_pct", "redis_other_cpu_pct",
                "redoubt_other_cpu_pct"])
    for e in results:
        R, D, q = e["redis"], e["redoubt"], e["ratio"]
        w.writerow([e["pipeline"], e["test"], R["status"], D["status"], rd(R["rps_median"], 2),
                    rd(D["rps_median"], 2), rd(q["median"], 4), rd(q["min"], 4), rd(q["max"], 4),
                    len(q["per_round"]), q["clean"],
                    rd(R["p50_ms_median"], 3), rd(D["p50_ms_median"], 3),
                    rd(R["p99_ms_median"], 3), rd(D["p99_ms_median"], 3),
                    rd(R["server_cpu_pct_median"], 1), rd(D["server_cpu_pct_median"], 1),
                    rd(R["other_cpu_pct_median"], 1), rd(D["other_cpu_pct_median"], 1)])

def fnum(x, fmt="{:,.0f}"):
    return "-" if x is None else fmt.format(x)

def pair(a, b, fmt="{:.3f}"):
    return "%s / %s" % (fnum(a, fmt), fnum(b, fmt))

tw = max([len(e["test"]) for e in results] + [4])
hdr = ("%3s  %-*s  %11s  %11s  %7s  %-13s  %6s  %-15s  %-15s  %-10s  %s"
       % ("-P", tw, "test", "Redis rps", "Redoubt rps", "ratio", "[min-max]", "rounds",
          "p50 ms Rs / Rd", "p99 ms Rs / Rd", "CPU% Rs/Rd", "other%"))
out = ["", "Results: medians over the clean rounds of %d (a round is clean when other processes "
       "used <= %.0f%% of a core during it);" % (rounds, other_max),
       "ratio = Redoubt rps / Redis rps in the same round, median and [min-max] over the clean "
       "rounds of both. Rs = Redis, Rd = Redoubt.", "", hdr, "-" * len(hdr)]
unsat, dirty, partial = [], [], []
n_samples = sum(len(e[k]["rps_all"]) for e in results for k in KINDS)
n_noisy = sum(e[k]["rounds_ok"] - e[k]["rounds_clean"] for e in results for k in KINDS)
last_pipe = None
for e in results:
    R, D, q = e["redis"], e["redoubt"], e["ratio"]
    if last_pipe is not None and e["pipeline"] != last_pipe:
        out.append("")
    last_pipe = e["pipeline"]
    label = "-P %d %s" % (e["pipeline"], e["test"])
    line = "%3d  %-*s  " % (e["pipeline"], tw, e["test"])
    rs = fnum(R["rps_median"]) if R["rps_median"] is not None else "n/a"
    rd_ = fnum(D["rps_median"]) if D["rps_median"] is not None else "n/a"
    line += "%11s  %11s  " % (rs, rd_)
    if q["median"] is None:
        if D["status"] not in ("ok", "partial"):
            why = na_text(D["status"])
        elif R["status"] not in ("ok", "partial"):
            why = "Redis " + na_text(R["status"])
        else:
            why = "n/a (no common round)"
        line += "%-22s  %6s  " % (why, "%d/%d" % (len(R["rounds_used"]), rounds)
                                  if R["rps_median"] is not None else "-")
    else:
        line += "%7.3f  %-13s  %6s  " % (q["median"], "[%.3f-%.3f]" % (q["min"], q["max"]),
                                         "%d/%d%s" % (len(q["per_round"]), rounds,
                                                      "" if q["clean"] else "!"))
    others = [x for x in (R["other_cpu_pct_median"], D["other_cpu_pct_median"]) if x is not None]
    line += "%-15s  %-15s  %-10s  %s" % (
        pair(R["p50_ms_median"], D["p50_ms_median"]),
        pair(R["p99_ms_median"], D["p99_ms_median"]),
        "%s/%s" % (fnum(R["server_cpu_pct_median"]), fnum(D["server_cpu_pct_median"])),
        fnum(max(others)) if others else "-")
    out.append(line.rstrip())
    if q["median"] is not None and not q["clean"]:
        dirty.append(label + " ratio")
    for kind, s in (("Redis", R), ("Redoubt", D)):
        c = s["server_cpu_pct_median"]
        if c is not None and c < 85:
            unsat.append("%s %s (%.0f%%)" % (label, kind, c))
        if s["only_noisy"]:
            dirty.append("%s %s" % (label, kind))
        if s["status"] == "partial":
            partial.append("%s %s (%s)" % (label, kind, ", ".join(s["failures"])))
out.append("")
out.append("rounds = rounds used for the ratio (for n/a rows: Redis rounds used); '!' = no clean "
           "round, noisy ones used. CPU% = server CPU time / wall time of its redis-benchmark run "
           "(100 = its one core saturated). other% = CPU used meanwhile by everything else, in % of "
           "one core (includes loopback softirq charged to no process; a few % is normal).")
out.append("noisy samples left out: %d of %d (other%% > %.0f)." % (n_noisy, n_samples, other_max))
if unsat:
    out.append("note: server below 85% CPU, so the one-core load generator likely set the pace: "
               + "; ".join(unsat))
if dirty:
    out.append("WARNING: only noisy rounds for: " + "; ".join(dirty)
               + ". Rerun on a quiet machine before quoting those rows.")
if partial:
    out.append("note: failed in some rounds: " + "; ".join(partial))
out.append("elapsed %ss; load average at start %s, at end %s"
           % (meta.get("elapsed", "?"), meta.get("load_start", "?"), meta.get("load_end", "?")))
out.append("files: %s/{report.txt,summary.csv,summary.json,raw.csv}" % run_dir)
print("\n".join(out))
PY
}

# ---------------------------------------------------------------------------------------------
if [[ ${1:-} == --summarize ]]; then # re-summarize an existing run: --summarize RUN_DIR
  [[ -f ${2:-}/raw.csv ]] || die "usage: $0 --summarize bench/out/vs-redis-<stamp>"
  summarize "$2"
  exit 0
fi
[[ $# -eq 0 ]] || die "usage: $0 [--summarize RUN_DIR] (settings come from the environment)"

bench_init
bench_check_tools redis-benchmark
CLK_TCK=$(getconf CLK_TCK)
TIMEFORMAT='%3U %3S' # for `time`: client user and system CPU seconds

STAMP=$(date +%Y%m%d-%H%M%S)
RUN_DIR=$OUT_DIR/vs-redis-$STAMP
mkdir -p "$RUN_DIR/logs" "$RUN_DIR/rb"
RAW=$RUN_DIR/raw.csv
REPORT=$RUN_DIR/report.txt
echo "round,pipeline,server,token,status,detail,server_cpu_pct,other_cpu_pct,wall_s,test,rps,avg_ms,min_ms,p50_ms,p95_ms,p99_ms,max_ms" >"$RAW"

SCRIPT_CMD="ROUNDS=$ROUNDS REQUESTS=$REQUESTS TESTS=$TESTS PIPELINES='$PIPELINES' CLIENTS=$CLIENTS KEYSPACE=$KEYSPACE DATASIZE=$DATASIZE ZRANGE_SIZE=$ZRANGE_SIZE BRPOP_ITEMS=$BRPOP_ITEMS BRPOP_CLIENTS=$BRPOP_CLIENTS XADD_KEYS=$XADD_KEYS XADD_MAXLEN=$XADD_MAXLEN XREADGROUP_NOACK=$XREADGROUP_NOACK bench/vs-redis.sh"
BENCH_CMD="taskset -c $CLIENT_CPU redis-benchmark -h 127.0.0.1 -p <port> -c $CLIENTS -n $REQUESTS -r $KEYSPACE -d $DATASIZE -P <$(
  IFS='|'
  echo "${PIPES[*]}"
)> -t <test> --csv"
SERVER_CMD="taskset -c $SERVER_CPU {redis-server|redoubt-server} --port <port>$(printf ' %q' "${SERVER_FLAGS[@]}")"
LOAD_START=$(loadavg)

{
  echo "== Redoubt vs Redis: redis-benchmark, one core per server =="
  echo "date         : $(date '+%Y-%m-%d %H:%M:%S %Z')"
  echo "script       : $SCRIPT_CMD"
  echo "server cmd   : $SERVER_CMD   (fresh instance per round, pipeline depth and server)"
  echo "bench cmd    : $BENCH_CMD"
  echo "               (one invocation per test, tests in order: ${TOKENS[*]})"
  for token in "${TOKENS[@]}"; do
    case $token in
      lpop | rpop | spop | zpopmin)
        echo "  $token: its key is first topped up to $REQUESTS elements (never empty during the run)" ;;
      zrange)
        echo "  zrange: <same options> ZRANGE $ZRANGE_KEY 0 9 WITHSCORES  (instead of -t; key pre-filled" \
          "with $ZRANGE_SIZE members member:NNNNNN, scores 0..$((ZRANGE_SIZE - 1)))" ;;
      evalsha)
        echo "  evalsha: <same options> EVALSHA <sha1 of \"$EVAL_SCRIPT\"> 1 ev:__rand_int__  (instead of -t;" \
          "the script is loaded with SCRIPT LOAD first)" ;;
      xadd)
        trim="no trimming"
        ((XADD_MAXLEN == 0)) || trim="trimmed to about $XADD_MAXLEN"
        echo "  xadd: <same options, but -r $XADD_KEYS> XADD $XADD_KEY" \
          "${XADD_TRIM[*]:+${XADD_TRIM[*]} }* f v  (instead of -t; auto IDs onto $XADD_KEYS streams" \
          "of ~$((REQUESTS / XADD_KEYS)) entries each by the end, $trim)" ;;
      xreadgroup)
        if ((XREADGROUP_NOACK)); then pel="NOACK: nothing stays pending"
        else pel="every entry read stays pending, so the PEL grows to $REQUESTS entries"; fi
        echo "  xreadgroup: <same options> XREADGROUP GROUP g c COUNT 1" \
          "${XRG_NOACK[*]:+${XRG_NOACK[*]} }STREAMS $XRG_KEY >  (instead of -t; $XRG_KEY pre-filled" \
          "with $XRG_FILL entries \"f v\", never drained; group g created at 0;" \
          "$pel)" ;;
      brpop)
        echo "  brpop: consumers <...> -c $BRPOP_CLIENTS -n N -P <depth> BRPOP $BQ_KEY 0, then once they" \
          "are blocked producers <...> -c $CLIENTS -n N -P <depth> LPUSH $BQ_KEY <$DATASIZE bytes>;" \
          "N = $BRPOP_ITEMS rounded down to a multiple of the depth; rps = items/s delivered" ;;
    esac
  done
  echo "rounds       : $ROUNDS, order per round and depth: ${KINDS[*]}"
  echo "cpu          : $(cpu_model)"
  echo "pinning      : server on CPU $SERVER_CPU, redis-benchmark on CPU $CLIENT_CPU"
  versions
  echo "redis-bench  : $(redis-benchmark --version)"
  echo "load avg     : $LOAD_START (at start)"
  echo "results dir  : $RUN_DIR"
} | tee "$REPORT"
warn_if_busy

log "probing which tests each server supports"
for kind in "${KINDS[@]}"; do probe_server "$kind"; done
{
  echo
  echo "probe (one redis-cli call per test on a fresh instance):"
  for token in "${TOKENS[@]}"; do
    line=$(printf '  %-10s' "$token")
    for kind in "${KINDS[@]}"; do
      line+=$(printf '  %s: %-12s' "$kind" "${STATUS[$kind:$token]}")
    done
    echo "$line"
    for kind in "${KINDS[@]}"; do
      if [[ -n ${DETAIL[$kind:$token]} ]]; then echo "      $kind: ${DETAIL[$kind:$token]}"; fi
    done
  done
} | tee -a "$REPORT"

T_START=$(date +%s)
for ((round = 1; round <= ROUNDS; round++)); do
  for pipe in "${PIPES[@]}"; do
    for kind in "${KINDS[@]}"; do
      run_instance "$round" "$pipe" "$kind"
    done
  done
done
ELAPSED=$(($(date +%s) - T_START))

printf 'ELAPSED=%s\nLOAD_START=%s\nLOAD_END=%s\nROUNDS=%s\n' "$ELAPSED" "$LOAD_START" "$(loadavg)" \
  "$ROUNDS" >"$RUN_DIR/meta.env"
summarize "$RUN_DIR" | tee -a "$REPORT"
ln -sfn "$(basename "$RUN_DIR")" "$OUT_DIR/vs-redis-latest"
