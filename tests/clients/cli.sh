#!/usr/bin/env bash
# Smoke tests of Redoubt with Redis's own command-line tools: redis-cli
# (PING, --pipe mass insertion, --scan, --bigkeys, INFO, RESP3 mode, MONITOR)
# and redis-benchmark (SET/GET). Starts redoubt-server ($REDOUBT_BIN, or
# target/debug/redoubt-server at the workspace root) on a free loopback port
# and stops it on exit. Every wait is bounded. Prints one line per check and
# exits non-zero if any check failed or a tool is missing.
set -uo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
BIN="${REDOUBT_BIN:-$ROOT/target/debug/redoubt-server}"

missing=()
[[ -x "$BIN" ]] || missing+=("redoubt-server binary at $BIN (run: cargo build -p redoubt-server)")
for tool in redis-cli redis-benchmark timeout; do
    command -v "$tool" >/dev/null 2>&1 || missing+=("$tool (Debian package: $([[ $tool == timeout ]] && echo coreutils || echo redis-tools))")
done
if ((${#missing[@]})); then
    for m in "${missing[@]}"; do echo "cli.sh: missing: $m" >&2; done
    exit 2
fi

WORK="$(mktemp -d "${TMPDIR:-/tmp}/redoubt-cli.XXXXXX")"
SERVER_PID=""
MONITOR_PID=""
cleanup() {
    [[ -n "$MONITOR_PID" ]] && kill "$MONITOR_PID" 2>/dev/null
    if [[ -n "$SERVER_PID" ]]; then
        kill "$SERVER_PID" 2>/dev/null
        for _ in $(seq 100); do kill -0 "$SERVER_PID" 2>/dev/null || break; sleep 0.05; done
        kill -9 "$SERVER_PID" 2>/dev/null
        wait "$SERVER_PID" 2>/dev/null
    fi
    rm -rf "$WORK"
}
trap cleanup EXIT

# Start on a random high port; retry on another one if the server cannot bind.
PORT=""
for _ in 1 2 3 4 5; do
    candidate=$((20000 + RANDOM % 40000))
    (cd "$WORK" && exec "$BIN" --port "$candidate" --bind 127.0.0.1 >"$WORK/server.log" 2>&1) &
    SERVER_PID=$!
    for _ in $(seq 200); do
        if ! kill -0 "$SERVER_PID" 2>/dev/null; then break; fi
        if [[ "$(redis-cli -p "$candidate" ping 2>/dev/null)" == PONG ]]; then PORT=$candidate; break; fi
        sleep 0.05
    done
    [[ -n "$PORT" ]] && break
    kill "$SERVER_PID" 2>/dev/null; wait "$SERVER_PID" 2>/dev/null; SERVER_PID=""
done
if [[ -z "$PORT" ]]; then
    echo "cli.sh: redoubt-server did not start; log:" >&2
    cat "$WORK/server.log" >&2
    exit 1
fi
echo "cli.sh: redoubt-server pid $SERVER_PID on port $PORT"

passed=0
failed=0
ok() { passed=$((passed + 1)); echo "ok   - $1"; }
not_ok() {
    failed=$((failed + 1))
    echo "FAIL - $1"
    [[ $# -gt 1 ]] && printf '%s\n' "$2" | head -20 | sed 's/^/       /'
}
cli() { timeout 30 redis-cli -p "$PORT" "$@"; }

# PING
out="$(cli ping 2>&1)"
if [[ "$out" == PONG ]]; then ok "redis-cli ping"; else not_ok "redis-cli ping" "$out"; fi

# RESP3 mode
out="$(cli -3 hello 3 2>&1)"
if grep -qx 'proto 3' <<<"$out" && grep -qx 'mode standalone' <<<"$out"; then
    ok "redis-cli -3 hello 3"
else
    not_ok "redis-cli -3 hello 3" "$out"
fi

# Mass insertion with --pipe (redis-cli ends it with an ECHO it must see back)
for i in $(seq 0 999); do printf 'SET scan:%d %d\r\n' "$i" "$i"; done >"$WORK/insert.txt"
out="$(timeout 30 redis-cli -p "$PORT" --pipe <"$WORK/insert.txt" 2>&1)"
if grep -q 'errors: 0, replies: 1000' <<<"$out"; then
    ok "redis-cli --pipe inserts 1000 keys"
else
    not_ok "redis-cli --pipe inserts 1000 keys" "$out"
fi

# --scan
cli set other:1 x >/dev/null
lines="$(cli --scan --pattern 'scan:*' | wc -l)"
unique="$(cli --scan --pattern 'scan:*' | sort -u | wc -l)"
if [[ "$lines" -eq 1000 && "$unique" -eq 1000 ]]; then
    ok "redis-cli --scan returns 1000 keys"
else
    not_ok "redis-cli --scan returns 1000 keys" "lines=$lines unique=$unique"
fi
all="$(cli --scan | wc -l)"
if [[ "$all" -eq 1001 ]]; then
    ok "redis-cli --scan without pattern"
else
    not_ok "redis-cli --scan without pattern" "lines=$all"
fi

# --bigkeys names the biggest string
cli set big:string "$(head -c 20000 /dev/zero | tr '\0' x)" >/dev/null
out="$(cli --bigkeys 2>&1)"
status=$?
if [[ $status -eq 0 ]] && grep -q "Biggest string.*big:string.*20000 bytes" <<<"$out"; then
    ok "redis-cli --bigkeys"
else
    not_ok "redis-cli --bigkeys (exit $status)" "$out"
fi

# INFO
out="$(cli info 2>&1)"
if grep -q '^# Server' <<<"$out" && grep -q '^redis_version:7\.2\.' <<<"$out" && grep -q "^tcp_port:$PORT" <<<"$out"; then
    ok "redis-cli info"
else
    not_ok "redis-cli info" "$out"
fi
out="$(cli info keyspace 2>&1)"
if grep -q '^db0:keys=1002,' <<<"$out"; then ok "redis-cli info keyspace"; else not_ok "redis-cli info keyspace" "$out"; fi

# MONITOR sees a command issued by another redis-cli
timeout 20 redis-cli -p "$PORT" monitor >"$WORK/monitor.txt" 2>&1 &
MONITOR_PID=$!
monitoring=""
for _ in $(seq 200); do
    if cli client list | grep -q 'cmd=monitor'; then monitoring=1; break; fi
    sleep 0.05
done
if [[ -z "$monitoring" ]]; then
    not_ok "redis-cli monitor" "no client in MONITOR mode after 10 s: $(cli client list)"
else
    cli set monitored-key "hello world" >/dev/null
    seen=""
    for _ in $(seq 200); do
        if grep -q '"set" "monitored-key" "hello world"' "$WORK/monitor.txt"; then seen=1; break; fi
        sleep 0.05
    done
    if [[ -n "$seen" ]] && grep -Eq '^[0-9]+\.[0-9]{6} \[0 127\.0\.0\.1:[0-9]+\] "set" "monitored-key" "hello world"$' "$WORK/monitor.txt"; then
        ok "redis-cli monitor"
    else
        not_ok "redis-cli monitor" "$(cat "$WORK/monitor.txt")"
    fi
fi
kill "$MONITOR_PID" 2>/dev/null; wait "$MONITOR_PID" 2>/dev/null; MONITOR_PID=""

# redis-benchmark
out="$(timeout 120 redis-benchmark -p "$PORT" -q -n 10000 -t set,get 2>&1 | tr '\r' '\n')"
status=$?
if [[ $status -eq 0 ]] && grep -q '^SET: .*requests per second' <<<"$out" \
    && grep -q '^GET: .*requests per second' <<<"$out" && ! grep -qi 'error' <<<"$out"; then
    ok "redis-benchmark -q -n 10000 -t set,get"
    grep 'requests per second' <<<"$out" | sed 's/^/       /'
else
    not_ok "redis-benchmark -q -n 10000 -t set,get (exit $status)" "$out"
fi

# The server survived all of it
out="$(cli ping 2>&1)"
if [[ "$out" == PONG ]]; then ok "server still answers"; else not_ok "server still answers" "$out"; fi

echo "cli: $passed passed, $failed failed"
((failed == 0))
