#!/usr/bin/env bash
# bench/snapshot.sh: snapshot time, peak memory and write latency during snapshots, Redoubt
# (no fork: copy-before-write of entries) vs redis-server (BGSAVE forks a child).
#
# For each server: start it fresh (pinned to SERVER_CPU, same flags for both), load KEYS keys
# "key:NNNNNNNNNNNN" (redis-benchmark's own key names, so its writes overwrite them and the
# dataset keeps its size) with VALUE-byte values through `redis-cli --pipe`, then
#   1. baseline: redis-benchmark SET (-c 20, random keys of the same key space, pinned to
#      CLIENT_CPU) with no snapshot running: its p99;
#   2. under snapshots: the same benchmark while BGSAVE runs back to back, with RSS sampled
#      every 10 ms: its p99, each snapshot's duration, and the peak memory.
# Peak memory is the server's RSS; for Redis, plus the Private_Dirty pages of its BGSAVE child
# (the memory the fork really adds: pages copied on write and the child's own allocations).
# Reported as a ratio to the RSS before the first snapshot (after the baseline run, so both
# servers have seen the same writes).
#
# Usage: bench/snapshot.sh                (1,000,000 keys)
#        KEYS=200000 bench/snapshot.sh    (quick run)
# Environment: KEYS VALUE WRITES SERVER_CPU CLIENT_CPU REDIS_BIN REDOUBT_BIN OUT_DIR
# Output: a table on stdout; report.txt under bench/out/snapshot-<timestamp>/.
set -euo pipefail

# shellcheck source-path=SCRIPTDIR source=lib/common.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib/common.sh"

KEYS=${KEYS:-1000000}
VALUE=${VALUE:-64}
WRITES=${WRITES:-600000}
OUT_DIR=${OUT_DIR:-$BENCH_DIR/out}

[[ $KEYS =~ ^[1-9][0-9]*$ && $KEYS -le 10000000 ]] || die "KEYS must be 1..10000000"

bench_init
bench_check_tools redis-benchmark
RUN_DIR=$OUT_DIR/snapshot-$(date +%Y%m%d-%H%M%S)
mkdir -p "$RUN_DIR/logs"
ln -sfn "$RUN_DIR" "$OUT_DIR/snapshot-latest"

python3 - "$KEYS" "$VALUE" "$BENCH_TMP/load.resp" <<'PY'
import sys
n, size, path = int(sys.argv[1]), int(sys.argv[2]), sys.argv[3]
value = b"v" * size
with open(path, "wb") as f:
    for lo in range(0, n, 100000):
        f.write(b"".join(b"*3\r\n$3\r\nSET\r\n$16\r\nkey:%012d\r\n$%d\r\n%s\r\n" % (i, size, value)
                         for i in range(lo, min(n, lo + 100000))))
PY

# p99 (ms) from redis-benchmark's latency summary.
p99() { awk '/latency summary/ { getline; getline; print $5; exit }' "$1"; }

# driver PORT PID BENCH_PID OUT: while BENCH_PID runs, starts BGSAVEs back to back over one
# connection (INFO polled every 10 ms on it), sampling the server's RSS plus its children's
# Private_Dirty; writes "peak_bytes count median_ms" to OUT. Pinned to the client CPU, so the
# polling takes nothing from the server's core.
driver() {
  taskset -c "$CLIENT_CPU" python3 - "$@" <<'PY'
import os, socket, sys, time
port, pid, bench, out = int(sys.argv[1]), int(sys.argv[2]), int(sys.argv[3]), sys.argv[4]
sock = socket.create_connection(("127.0.0.1", port))
buf = b""
def command(*args):
    global buf
    sock.sendall(b"*%d\r\n" % len(args) + b"".join(b"$%d\r\n%s\r\n" % (len(a), a) for a in args))
    while True:
        if buf[:1] == b"$" and b"\r\n" in buf:
            n = int(buf[1:buf.index(b"\r\n")])
            need = buf.index(b"\r\n") + 2 + n + 2
            if len(buf) >= need:
                reply, buf = buf[buf.index(b"\r\n") + 2:need - 2], buf[need:]
                return reply.decode()
        elif buf[:1] in (b"+", b"-") and b"\r\n" in buf:
            i = buf.index(b"\r\n")
            reply, buf = buf[:i], buf[i + 2:]
            return reply.decode()
        buf += sock.recv(65536)
def field(name):
    for line in command(b"INFO", b"persistence").split("\r\n"):
        if line.startswith(name + ":"):
            return line.split(":", 1)[1]
def kib(path, key):
    try:
        with open(path) as f:
            for line in f:
                if line.startswith(key):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    return 0
def children(p):
    try:
        with open(f"/proc/{p}/task/{p}/children") as f:
            return [int(c) for c in f.read().split()]
    except OSError:
        return []
def sample():
    return kib(f"/proc/{pid}/status", "VmRSS:") + sum(kib(f"/proc/{c}/smaps_rollup", "Private_Dirty:") for c in children(pid))
def running(p):
    try:
        with open(f"/proc/{p}/stat") as f:
            return f.read().split(")")[-1].split()[0] != "Z"
    except OSError:
        return False
peak, times = sample(), []
while running(bench):
    t0 = time.monotonic()
    reply = command(b"BGSAVE")
    assert reply == "+Background saving started", reply
    while True:
        peak = max(peak, sample())
        if field("rdb_bgsave_in_progress") == "0":
            break
        time.sleep(0.01)
    times.append((time.monotonic() - t0) * 1000)
    assert field("rdb_last_bgsave_status") == "ok", "BGSAVE failed"
times.sort()
with open(out, "w") as f:
    f.write("%d %d %d\n" % (peak, len(times), times[(len(times) - 1) // 2]))
PY
}

declare -A R

measure() {
  local kind=$1 logfile=$RUN_DIR/logs/$kind.log base=$RUN_DIR/$kind
  start_server "$kind" "$logfile"
  log "$kind: pid $SRV_PID, port $SRV_PORT; loading $KEYS keys"
  timeout 300 redis-cli -p "$SRV_PORT" --pipe <"$BENCH_TMP/load.resp" >/dev/null
  [[ $(cli "$SRV_PORT" DBSIZE) == "$KEYS" ]] || die "$kind: DBSIZE is not $KEYS"
  sleep 2
  local bench=(taskset -c "$CLIENT_CPU" redis-benchmark -p "$SRV_PORT" -t set -n "$WRITES" -r "$KEYS" -d "$VALUE" -c 20)
  "${bench[@]}" >"$base-baseline.txt" 2>&1
  R[$kind:p99_base]=$(p99 "$base-baseline.txt")
  R[$kind:rss0]=$(awk '/VmRSS/ { print $2 * 1024 }' "/proc/$SRV_PID/status")
  "${bench[@]}" >"$base-during.txt" 2>&1 &
  local bench_pid=$!
  BENCH_JOBS+=("$bench_pid")
  driver "$SRV_PORT" "$SRV_PID" "$bench_pid" "$base-snapshots"
  wait "$bench_pid"
  R[$kind:p99_snap]=$(p99 "$base-during.txt")
  read -r "R[$kind:peak]" "R[$kind:snapshots]" "R[$kind:ms]" <"$base-snapshots"
  R[$kind:file]=$(stat -c %s "$BENCH_TMP/dump.rdb")
  stop_server "$SRV_PID"
  rm -f "$BENCH_TMP/dump.rdb"
}

warn_if_busy
for kind in redis redoubt; do measure "$kind"; done

{
  echo "snapshot benchmark: $KEYS keys of $VALUE-byte values; writes: redis-benchmark SET -c 20 -n $WRITES"
  echo "versions     : $(versions)"
  echo "cpu          : $(cpu_model); server on CPU $SERVER_CPU, client on CPU $CLIENT_CPU"
  printf '%-8s %12s %12s %9s %12s %12s %10s %12s\n' server "rss before" "peak" "peak/rss" "p99 base ms" "p99 snap ms" snapshots "median ms"
  for kind in redis redoubt; do
    printf '%-8s %12s %12s %9.3f %12s %12s %10s %12s\n' "$kind" "${R[$kind:rss0]}" "${R[$kind:peak]}" \
      "$(echo "${R[$kind:peak]} / ${R[$kind:rss0]}" | bc -l)" "${R[$kind:p99_base]}" "${R[$kind:p99_snap]}" \
      "${R[$kind:snapshots]}" "${R[$kind:ms]}"
  done
  echo "file bytes   : redis ${R[redis:file]}, redoubt ${R[redoubt:file]}"
} | tee "$RUN_DIR/report.txt"
