"""The admin HTTP listener, as an operator's tools use it: /metrics read by
Prometheus's own text parser and compared with INFO, the health and readiness
probes, the JSON status document, the server password, and alert webhooks
(a dead receiver must not slow the server down; an https receiver is verified)."""

import base64
import json
import os
import socket
import ssl
import subprocess
import tempfile
import threading
import time
import urllib.error
import urllib.request
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import redis
from prometheus_client.parser import text_string_to_metric_families

from conftest import running_server

# The common Redis exporter's names that Redoubt must serve (compatibility spec).
EXPORTER_NAMES = [
    "redis_up", "redis_uptime_in_seconds", "redis_connected_clients", "redis_blocked_clients",
    "redis_memory_used_bytes", "redis_memory_max_bytes", "redis_memory_used_rss_bytes",
    "redis_memory_fragmentation_ratio", "redis_commands_total", "redis_commands_duration_seconds_total",
    "redis_db_keys", "redis_db_keys_expiring", "redis_keyspace_hits_total", "redis_keyspace_misses_total",
    "redis_expired_keys_total", "redis_evicted_keys_total", "redis_net_input_bytes_total",
    "redis_net_output_bytes_total", "redis_connected_slaves",
]


def client(port, **kw):
    return redis.Redis(host="127.0.0.1", port=port, socket_timeout=10, decode_responses=True, **kw)


def admin(r):
    return f"http://127.0.0.1:{r.info('server')['admin_port']}"


def get(url, headers=None, method="GET"):
    """(status, body, headers) of one request."""
    req = urllib.request.Request(url, headers=headers or {}, method=method)
    try:
        with urllib.request.urlopen(req, timeout=10) as resp:
            return resp.status, resp.read().decode(), resp.headers
    except urllib.error.HTTPError as e:
        return e.code, e.read().decode(), e.headers


def samples(text):
    """{(name, frozenset(labels)): value} and {family name: type}."""
    values, types = {}, {}
    for fam in text_string_to_metric_families(text):
        types[fam.name] = fam.type
        for s in fam.samples:
            values[(s.name, frozenset(s.labels.items()))] = s.value
    return values, types


def test_metrics_parse_and_agree_with_info():
    with running_server("redoubt") as port:
        r = client(port)
        r.config_set("maxmemory", "64mb")
        r.config_set("namespace", "sessions match sess:* limit 1mb evict none; cache default")
        for i in range(50):
            r.set(f"sess:{i}", "x" * 100)
            r.set(f"page:{i}", "y" * 100, ex=3600)
        r3 = redis.Redis(host="127.0.0.1", port=port, db=3, decode_responses=True)
        r3.set("other", "1")
        for i in range(80):
            r.get(f"sess:{i}")  # 50 hits, 30 misses
        status, text, headers = get(admin(r) + "/metrics")
        assert status == 200
        assert headers["Content-Type"].startswith("text/plain; version=0.0.4")
        info = r.info("everything")
        values, types = samples(text)
        names = {name for (name, _) in values}
        for n in EXPORTER_NAMES:
            assert n in names, f"/metrics lacks {n}"
        assert all(n.startswith(("redis_", "redoubt_")) for n in names), names
        assert types["redis_commands"] == "counter" and types["redis_db_keys"] == "gauge"

        def one(name, **labels):
            return values[(name, frozenset(labels.items()))]

        # counters and gauges that did not move between the two reads are equal
        assert one("redis_db_keys", db="db0") == info["db0"]["keys"] == 100
        assert one("redis_db_keys_expiring", db="db0") == info["db0"]["expires"] == 50
        assert one("redis_db_keys", db="db3") == 1
        assert one("redis_keyspace_hits_total") == info["keyspace_hits"] == 50
        assert one("redis_keyspace_misses_total") == info["keyspace_misses"] == 30
        assert one("redis_commands_total", cmd="set") == info["cmdstat_set"]["calls"] == 101
        assert one("redis_commands_duration_seconds_total", cmd="set") == info["cmdstat_set"]["usec"] / 1e6
        assert one("redis_memory_max_bytes") == info["maxmemory"] == 64 << 20
        assert one("redis_evicted_keys_total") == info["evicted_keys"]
        assert one("redis_connected_slaves") == info["connected_slaves"] == 0
        assert abs(one("redis_memory_used_bytes") - info["used_memory"]) < info["used_memory"] * 0.1
        assert abs(one("redis_uptime_in_seconds") - info["uptime_in_seconds"]) <= 2
        assert one("redis_up") == 1
        # our own: namespaces, from the same INFO
        ns = info["ns_sessions"]
        assert one("redoubt_namespace_keys", namespace="sessions") == ns["keys"] == 50
        assert one("redoubt_namespace_memory_bytes", namespace="sessions") == ns["memory"]
        assert one("redoubt_namespace_limit_bytes", namespace="sessions") == 1 << 20
        assert one("redoubt_namespace_hits_total", namespace="sessions") == 50
        assert one("redoubt_alerts_open") == info["alerts_open"]


def test_probes_status_and_errors():
    with running_server("redoubt") as port:
        r = client(port)
        base = admin(r)
        assert get(base + "/healthz")[:2] == (200, "ok\n")
        status, body, _ = get(base + "/readyz")
        assert (status, json.loads(body)) == (200, {"ready": True, "role": "master", "reasons": []})
        r.set("k", "v")
        status, body, headers = get(base + "/api/status?range=1h")
        assert status == 200 and headers["Content-Type"] == "application/json"
        doc = json.loads(body)
        assert doc["range_ms"] == 3_600_000
        assert doc["server"]["address"] == f"127.0.0.1:{port}"
        assert doc["info"]["keyspace"]["db0"] == "keys=1,expires=0,avg_ttl=0"
        assert doc["info"]["server"]["redis_git_sha1"] == "00000000"
        assert [s["name"] for s in doc["scopes"]] == ["global"]
        assert doc["alerts"] == [] and isinstance(doc["server_series"]["ops_per_sec"], list)
        assert get(base + "/nope")[0] == 404
        status, _, headers = get(base + "/metrics", method="POST")
        assert status == 405 and headers["Allow"] == "GET, HEAD"
        status, body, _ = get(base + "/metrics", method="HEAD")
        assert (status, body) == (200, "")


def test_the_server_password_guards_every_path():
    with running_server("redoubt", ("--requirepass", "s3cret")) as port:
        r = client(port, password="s3cret")
        base = admin(r)
        status, body, headers = get(base + "/metrics")
        assert status == 401 and headers["WWW-Authenticate"] == 'Basic realm="redoubt"'
        assert "password" in body
        basic = "Basic " + base64.b64encode(b"prometheus:s3cret").decode()
        assert get(base + "/metrics", {"Authorization": basic})[0] == 200
        assert get(base + "/healthz", {"Authorization": "Bearer s3cret"})[:2] == (200, "ok\n")
        wrong = "Basic " + base64.b64encode(b"default:nope").decode()
        assert get(base + "/api/status", {"Authorization": wrong})[0] == 401
        assert get(base + "/readyz")[0] == 401


def collector(status):
    """A webhook receiver's handler class: answers each POST with `status` and keeps its
    path and JSON body in the class's own `posts`."""

    class Handler(BaseHTTPRequestHandler):
        posts = []

        def do_POST(self):
            length = int(self.headers["Content-Length"])
            Handler.posts.append((self.path, json.loads(self.rfile.read(length))))
            self.send_response(status)
            self.end_headers()

        def log_message(self, *args):
            pass

    return Handler


def webhook_args(urls, timeout_ms, retries):
    """Server arguments: samples only by DEBUG GUARD-TICK, alerts posted to `urls`."""
    return (
        "--guard-interval", "0", "--enable-debug-command", "yes", "--alert-webhook", urls,
        "--alert-webhook-timeout-ms", str(timeout_ms), "--alert-webhook-retries", str(retries),
    )


def test_webhooks_deliver_and_a_dead_one_never_slows_serving():
    Collector = collector(204)
    good = ThreadingHTTPServer(("127.0.0.1", 0), Collector)
    threading.Thread(target=good.serve_forever, daemon=True).start()
    # a receiver that accepts connections and never answers
    dead = socket.socket()
    dead.bind(("127.0.0.1", 0))
    dead.listen(16)
    hooks = f"http://127.0.0.1:{dead.getsockname()[1]}/x http://127.0.0.1:{good.server_address[1]}/alerts"

    def bodies():
        return [b for _, b in Collector.posts]

    args = webhook_args(hooks, timeout_ms=400, retries=1)
    try:
        with running_server("redoubt", args) as port:
            r = client(port)
            r.config_set("namespace", "q match q:* limit 1mb evict none")
            r.set("q:big", "z" * 600_000)
            assert r.execute_command("DEBUG", "GUARD-TICK", "10000") == "OK"
            ticked = time.monotonic()
            # the live receiver (listed second) gets both events while the dead one, listed
            # first, still holds its own thread: each URL has its own queue
            while len(bodies()) < 2 and time.monotonic() - ticked < 5:
                time.sleep(0.01)
            took = time.monotonic() - ticked
            assert len(bodies()) == 2 and took < 1.2, f"{len(bodies())} events after {took:.2f} s"
            alerts = r.info("alerts")
            assert alerts["alerts_open"] == 2
            assert {alerts["alert0"]["id"], alerts["alert1"]["id"]} == {"memory:q:20", "memory:q:50"}
            # the dead receiver holds the delivery thread for seconds; PING does not notice
            worst = 0.0
            for _ in range(300):
                t = time.perf_counter()
                assert r.ping()
                worst = max(worst, time.perf_counter() - t)
            assert worst < 0.05, f"a PING took {worst * 1000:.1f} ms while a webhook hung"
            deadline = time.time() + 20
            while time.time() < deadline and r.info("alerts")["alert_webhook_failed"] < 2:
                time.sleep(0.05)
            alerts = r.info("alerts")
            assert (alerts["alert_webhook_failed"], alerts["alert_webhook_sent"]) == (2, 2)
            got = sorted(b["alert"]["id"] for b in bodies())
            assert {p for p, _ in Collector.posts} == {"/alerts"}
            assert got == ["memory:q:20", "memory:q:50"]
            body = bodies()[0]
            assert body["event"] == "open" and body["alert"]["subject"] == "q"
            assert body["alert"]["resolved_at"] is None and body["server"]["address"] == f"127.0.0.1:{port}"
            # resolving: the key goes, the next sample resolves both, the receiver hears it
            r.delete("q:big")
            r.execute_command("DEBUG", "GUARD-TICK", "10000")
            deadline = time.time() + 20
            while time.time() < deadline and sum(b["event"] == "resolve" for b in bodies()) < 2:
                time.sleep(0.05)
            assert sorted(b["alert"]["id"] for b in bodies() if b["event"] == "resolve") == got
            assert r.info("alerts")["alerts_open"] == 0
    finally:
        good.shutdown()
        dead.close()


def test_an_https_webhook_is_verified_against_the_configured_ca():
    with tempfile.TemporaryDirectory() as tmp:
        # a private CA and the receiver's certificate, signed by it for the name localhost
        def path(name):
            return os.path.join(tmp, name)

        ec = ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes"]
        with open(path("leaf.ext"), "w") as f:
            f.write("subjectAltName=DNS:localhost\nbasicConstraints=CA:FALSE\nextendedKeyUsage=serverAuth\n")
        for cmd in (
            ["req", "-x509", *ec, "-keyout", path("ca.key"), "-out", path("ca.pem"), "-days", "2",
             "-subj", "/CN=redoubt test CA"],
            ["req", *ec, "-keyout", path("key.pem"), "-out", path("leaf.csr"), "-subj", "/CN=localhost"],
            ["x509", "-req", "-in", path("leaf.csr"), "-CA", path("ca.pem"), "-CAkey", path("ca.key"),
             "-CAcreateserial", "-days", "2", "-extfile", path("leaf.ext"), "-out", path("cert.pem")],
        ):
            subprocess.run(["openssl", *cmd], check=True, capture_output=True)
        cert, key = path("cert.pem"), path("key.pem")
        Tls = collector(200)
        receiver = ThreadingHTTPServer(("127.0.0.1", 0), Tls)
        tls = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        tls.load_cert_chain(cert, key)
        receiver.socket = tls.wrap_socket(receiver.socket, server_side=True)
        threading.Thread(target=receiver.serve_forever, daemon=True).start()
        url = f"https://localhost:{receiver.server_address[1]}/hook"
        args = webhook_args(url, timeout_ms=2000, retries=0)
        try:
            with running_server("redoubt", args) as port:
                r = client(port)
                # a CA file that holds no certificate is refused with the reason
                empty = os.path.join(tmp, "empty.pem")
                open(empty, "w").close()
                try:
                    r.config_set("alert-webhook-ca-file", empty)
                    raise AssertionError("an empty CA file was accepted")
                except redis.ResponseError as e:
                    assert "no PEM certificate" in str(e)
                # the private CA is not among the built-in roots: delivery fails
                r.config_set("namespace", "q match q:* limit 1mb evict none")
                r.set("q:big", "z" * 300_000)
                r.execute_command("DEBUG", "GUARD-TICK", "10000")
                deadline = time.time() + 20
                while time.time() < deadline and r.info("alerts")["alert_webhook_failed"] < 1:
                    time.sleep(0.05)
                assert r.info("alerts")["alert_webhook_failed"] == 1 and Tls.posts == []
                log = os.path.join(r.config_get("dir")["dir"], "server.log")
                with open(log) as f:
                    text = f.read()
                # the log says why, and what to do
                assert "UnknownIssuer" in text and "set alert-webhook-ca-file" in text, text[-1000:]
                # with the CA in the CA file, the next event arrives, over TLS
                r.config_set("alert-webhook-ca-file", path("ca.pem"))
                r.delete("q:big")
                r.execute_command("DEBUG", "GUARD-TICK", "10000")
                deadline = time.time() + 20
                while time.time() < deadline and not Tls.posts:
                    time.sleep(0.05)
                assert [(p, b["event"], b["alert"]["id"]) for p, b in Tls.posts] == [
                    ("/hook", "resolve", "memory:q:20")], Tls.posts
                assert r.info("alerts")["alert_webhook_sent"] == 1
        finally:
            receiver.shutdown()
