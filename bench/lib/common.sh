# shellcheck shell=bash
# shellcheck disable=SC2034  # SRV_PID, SRV_PORT, BENCH_DIR... are read by the sourcing scripts
# Shared helpers for the bench/*.sh scripts (sourced, not run).
#
# Provides: free loopback ports, starting a server pinned to one CPU, waiting for it with a
# timeout, stopping it (TERM, then KILL), INFO field reads, and an EXIT trap that kills every
# server and background client this script started and removes the scratch directory, even on
# Ctrl-C or error.

BENCH_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
REPO_ROOT=$(cd "$BENCH_DIR/.." && pwd)

SERVER_CPU=${SERVER_CPU:-1}
CLIENT_CPU=${CLIENT_CPU:-0}
REDIS_BIN=${REDIS_BIN:-$(command -v redis-server || true)}
REDOUBT_BIN=${REDOUBT_BIN:-$REPO_ROOT/target/release/redoubt-server}
# Same flags for both servers (port is added per start).
SERVER_FLAGS=(--bind 127.0.0.1 --save '' --appendonly no)

BENCH_PIDS=()   # servers started by this script; killed by the EXIT trap
BENCH_JOBS=()   # background client subshells; the EXIT trap kills their children and them
BENCH_TMP=""    # scratch directory (server cwd, copied binary, generated input)
SRV_PID=""      # set by start_server
SRV_PORT=""     # set by start_server

log() { printf '[%s] %s\n' "$(date +%H:%M:%S)" "$*" >&2; }
die() { printf 'error: %s\n' "$*" >&2; exit 1; }

# kill_children PID: SIGTERM to the direct children of PID (found by parent PID, not by name).
# For a subshell running `time timeout ... redis-benchmark`, that is the timeout process, which
# passes the signal on to redis-benchmark.
kill_children() {
  local c
  for c in $(pgrep -P "$1" 2>/dev/null); do kill -TERM "$c" 2>/dev/null || true; done
}

bench_cleanup() {
  local pid n
  for pid in "${BENCH_JOBS[@]}"; do
    kill_children "$pid"
    kill -TERM "$pid" 2>/dev/null || true
  done
  BENCH_JOBS=()
  for pid in "${BENCH_PIDS[@]}"; do
    kill -TERM "$pid" 2>/dev/null || true
  done
  for pid in "${BENCH_PIDS[@]}"; do
    for ((n = 0; n < 50; n++)); do
      kill -0 "$pid" 2>/dev/null || break
      sleep 0.1
    done
    kill -KILL "$pid" 2>/dev/null || true
  done
  BENCH_PIDS=()
  if [[ -n $BENCH_TMP && -d $BENCH_TMP ]]; then rm -rf "$BENCH_TMP"; fi
}

# Installs the traps and the scratch directory; call once, early.
bench_init() {
  BENCH_TMP=$(mktemp -d "${TMPDIR:-/tmp}/redoubt-bench.XXXXXX")
  trap bench_cleanup EXIT
  trap 'exit 130' INT
  trap 'exit 143' TERM
  trap 'exit 129' HUP
}

# Checks the tools and binaries both scripts need, and freezes the Redoubt binary: it is copied
# into the scratch directory so a rebuild by someone else during a long run cannot change it.
bench_check_tools() {
  local t
  for t in redis-cli taskset timeout python3 "$@"; do
    command -v "$t" >/dev/null || die "'$t' not found in PATH"
  done
  [[ -n $REDIS_BIN && -x $REDIS_BIN ]] || die "redis-server not found (set REDIS_BIN)"
  [[ -x $REDOUBT_BIN ]] ||
    die "$REDOUBT_BIN missing: run 'cargo build --release -p redoubt-server' (or set REDOUBT_BIN)"
  [[ $(nproc --all) -gt $SERVER_CPU && $(nproc --all) -gt $CLIENT_CPU ]] ||
    die "need CPUs $SERVER_CPU and $CLIENT_CPU (have $(nproc --all))"
  REDOUBT_SRC_BIN=$REDOUBT_BIN
  cp "$REDOUBT_BIN" "$BENCH_TMP/redoubt-server"
  REDOUBT_BIN=$BENCH_TMP/redoubt-server
}

server_bin() {
  case $1 in
    redis) printf '%s\n' "$REDIS_BIN" ;;
    redoubt) printf '%s\n' "$REDOUBT_BIN" ;;
    *) die "unknown server kind '$1'" ;;
  esac
}

# A free TCP port on 127.0.0.1 in 20000-32000 (never 6379), verified by binding it.
free_port() {
  python3 - <<'PY'
import random, socket, sys
for _ in range(500):
    p = random.randint(20000, 32000)
    if p == 6379:
        continue
    s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    try:
        s.bind(("127.0.0.1", p))
    except OSError:
        continue
    finally:
        s.close()
    print(p)
    sys.exit(0)
sys.exit("no free port found")
PY
}

cli() { # cli PORT ARGS... (10 s timeout)
  local port=$1
  shift
  timeout -k 2 10 redis-cli -h 127.0.0.1 -p "$port" "$@"
}

# wait_ready PORT PID SECONDS: 0 once PING answers PONG, 1 if the process died or time ran out.
wait_ready() {
  local port=$1 pid=$2 secs=$3 n
  for ((n = 0; n < secs * 10; n++)); do
    kill -0 "$pid" 2>/dev/null || return 1
    if [[ $(timeout -k 1 2 redis-cli -h 127.0.0.1 -p "$port" PING 2>/dev/null) == PONG ]]; then
      return 0
    fi
    sleep 0.1
  done
  return 1
}

# start_server KIND LOGFILE: starts a fresh server pinned to SERVER_CPU on a free loopback port;
# sets SRV_PID and SRV_PORT. Retries on another port if the first one was taken meanwhile.
start_server() {
  local kind=$1 logfile=$2 bin port pid attempt
  bin=$(server_bin "$kind")
  for attempt in 1 2 3; do
    port=$(free_port)
    [[ $port != 6379 ]] || die "refusing to use port 6379"
    echo "=== start $kind attempt $attempt port $port $(date +%T)" >>"$logfile"
    (cd "$BENCH_TMP" && exec taskset -c "$SERVER_CPU" "$bin" --port "$port" "${SERVER_FLAGS[@]}") \
      >>"$logfile" 2>&1 &
    pid=$!
    BENCH_PIDS+=("$pid")
    if wait_ready "$port" "$pid" 15; then
      SRV_PID=$pid
      SRV_PORT=$port
      return 0
    fi
    stop_server "$pid"
  done
  die "$kind did not start (3 attempts); see $logfile"
}

# stop_server PID: SIGTERM, up to 10 s, then SIGKILL; reaps it.
stop_server() {
  local pid=$1 n p keep=()
  kill -TERM "$pid" 2>/dev/null || true
  for ((n = 0; n < 100; n++)); do
    kill -0 "$pid" 2>/dev/null || break
    sleep 0.1
  done
  kill -KILL "$pid" 2>/dev/null || true
  wait "$pid" 2>/dev/null || true
  for p in "${BENCH_PIDS[@]}"; do
    [[ $p == "$pid" ]] || keep+=("$p")
  done
  BENCH_PIDS=("${keep[@]}")
}

# info_field PORT SECTION FIELD: one value from INFO SECTION (empty if absent).
info_field() {
  cli "$1" INFO "$2" | tr -d '\r' | awk -F: -v f="$3" '$1 == f { print $2; exit }'
}

cpu_model() {
  local m
  m=$(lscpu 2>/dev/null | sed -n 's/^Model name:[[:space:]]*//p' | head -n1)
  [[ -n $m ]] || m=$(sed -n 's/^model name[[:space:]]*:[[:space:]]*//p' /proc/cpuinfo | head -n1)
  local hv
  hv=$(lscpu 2>/dev/null | sed -n 's/^Hypervisor vendor:[[:space:]]*//p' | head -n1)
  printf '%s, %s CPUs online%s, kernel %s\n' "${m:-unknown}" "$(nproc --all)" \
    "${hv:+, hypervisor $hv}" "$(uname -r)"
}

loadavg() { cut -d' ' -f1-3 /proc/loadavg; }

# Warns when something else is keeping the CPUs busy right now (1 s sample; results would be noisy).
warn_if_busy() {
  local b0 b1 pct
  b0=$(cpu_busy)
  sleep 1
  b1=$(cpu_busy)
  pct=$(((b1 - b0) * 100 / $(getconf CLK_TCK)))
  if ((pct > 15)); then
    log "WARNING: other processes use ${pct}% of a core right now; the numbers may be noisy" \
      "(load average $(loadavg))."
  fi
}

versions() {
  printf 'redis-server : %s\n' "$("$REDIS_BIN" --version)"
  printf 'redoubt      : %s\n' "$("$REDOUBT_BIN" --version)"
  printf 'redoubt bin  : %s (mtime %s, sha256 %s)\n' "$REDOUBT_SRC_BIN" \
    "$(date -r "$REDOUBT_SRC_BIN" '+%Y-%m-%d %H:%M:%S')" \
    "$(sha256sum "$REDOUBT_BIN" | cut -c1-16)"
  printf 'redoubt src  : commit %s\n' "$(git -C "$REPO_ROOT" rev-parse --short HEAD 2>/dev/null || echo unknown)"
}

# Non-idle jiffies of the whole machine (user nice system irq softirq steal), from /proc/stat.
cpu_busy() { awk '/^cpu / { print $2 + $3 + $4 + $7 + $8 + $9; exit }' /proc/stat; }

QUIET_PCT=${QUIET_PCT:-10}    # "quiet" = other processes use at most this % of one core
QUIET_WAIT=${QUIET_WAIT:-60}  # seconds to wait for quiet before each server start (0 = off)

# wait_quiet: called while none of our servers runs, so any CPU use is someone else's. Waits up to
# QUIET_WAIT seconds for it to drop to QUIET_PCT% of a core, then goes on (with a warning).
wait_quiet() {
  local start=$SECONDS b0 b1 pct hz
  hz=$(getconf CLK_TCK)
  ((QUIET_WAIT > 0)) || return 0
  while :; do
    b0=$(cpu_busy)
    sleep 1
    b1=$(cpu_busy)
    pct=$(((b1 - b0) * 100 / hz))
    ((pct > QUIET_PCT)) || return 0
    if ((SECONDS - start >= QUIET_WAIT)); then
      log "WARNING: other processes still use ${pct}% of a core after ${QUIET_WAIT}s; going on"
      return 0
    fi
    log "waiting for a quiet machine: other processes use ${pct}% of a core"
    sleep 2
  done
}
