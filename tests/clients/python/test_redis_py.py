"""Smoke tests: redis-py 8.x (RESP3 and RESP2) against a Redoubt server.

Each test runs twice, once per protocol, through the client's own helpers:
the HELLO handshake, SET/GET with options, pipelines, MGET/MSET, counters,
expiry, SCAN iteration, CLIENT SETNAME/LIST, INFO parsing, CONFIG GET, error
replies surfacing as ResponseError, lists/hashes/sets and the sorted-set helpers
(scores parsed as floats, WITHSCORES pairs, blocking pops, ZMPOP, ZSCAN). The point is that a real client
library parses every reply Redoubt sends; exact reply bytes are checked by the
Rust differential tests.
"""

import math

import pytest
import redis


def test_hello_negotiates_the_protocol(r):
    proto = r.get_connection_kwargs()["protocol"]
    assert r.ping() is True
    info = r.client_info()
    assert info["resp"] == str(proto)
    hello = r.execute_command("HELLO", proto)
    if proto == 3:
        assert isinstance(hello, dict), "HELLO 3 must reply with a RESP3 map"
    else:
        assert isinstance(hello, list), "HELLO 2 replies with a flat array"
        hello = dict(zip(hello[::2], hello[1::2]))
    assert hello["proto"] == proto
    assert hello["server"] == "redis"
    assert hello["version"].startswith("7.2.")
    assert hello["mode"] == "standalone"
    assert hello["role"] == "master"


def test_set_get_with_options(r):
    assert r.set("k", "v1") is True
    assert r.get("k") == "v1"
    assert r.set("k", "v2", nx=True) is None
    assert r.set("k", "v2", xx=True) is True
    assert r.set("other", "x", xx=True) is None
    assert r.set("k", "v3", get=True) == "v2"
    assert r.set("k", "v4", ex=100) is True
    assert 0 < r.ttl("k") <= 100
    assert r.set("k", "v5", keepttl=True) is True
    assert 0 < r.ttl("k") <= 100
    assert r.set("k", "v6", px=50_000) is True
    assert 0 < r.pttl("k") <= 50_000
    assert r.set("k", "v7") is True
    assert r.ttl("k") == -1
    assert r.get("missing") is None
    assert r.getdel("k") == "v7"
    assert r.exists("k") == 0
    with pytest.raises(redis.ResponseError):
        r.set("k", "v", ex=0)


def test_pipeline_without_transaction(r):
    pipe = r.pipeline(transaction=False)
    for i in range(200):
        pipe.set(f"p:{i}", i)
    pipe.incr("p:counter")
    pipe.get("p:7")
    pipe.mget("p:1", "p:2", "nope")
    pipe.strlen("p:199")
    results = pipe.execute()
    assert results[:200] == [True] * 200
    assert results[200:] == [1, "7", ["1", "2", None], 3]


def test_pipeline_reports_errors_in_place(r):
    r.set("text", "abc")
    pipe = r.pipeline(transaction=False)
    pipe.incr("text")
    pipe.get("text")
    results = pipe.execute(raise_on_error=False)
    assert isinstance(results[0], redis.ResponseError)
    assert results[1] == "abc"


def test_transactional_pipeline(r):
    pipe = r.pipeline()  # redis-py's default wraps the batch in MULTI/EXEC
    pipe.set("t", 1)
    pipe.incr("t")
    assert pipe.execute() == [True, 2]


def test_watch_retries_after_a_concurrent_write(r, server_port):
    other = redis.Redis(host="127.0.0.1", port=server_port, decode_responses=True)
    r.set("balance", 10)
    with r.pipeline() as pipe:
        pipe.watch("balance")
        other.set("balance", 20)  # changes the watched key before EXEC
        pipe.multi()
        pipe.set("balance", 0)
        with pytest.raises(redis.WatchError):
            pipe.execute()
    assert r.get("balance") == "20"


def test_pubsub_round_trip(r):
    p = r.pubsub()
    p.subscribe("news")
    assert p.get_message(timeout=5)["type"] == "subscribe"
    assert r.publish("news", "hello") == 1
    msg = p.get_message(timeout=5)
    assert msg["type"] == "message" and msg["channel"] == "news" and msg["data"] == "hello"
    p.close()


def test_mset_mget(r):
    mapping = {f"m:{i}": f"value-{i}" for i in range(100)}
    assert r.mset(mapping) is True
    keys = list(mapping) + ["m:missing"]
    assert r.mget(keys) == list(mapping.values()) + [None]
    assert r.msetnx({"m:1": "x", "m:new": "y"}) is False
    assert r.get("m:new") is None


def test_incr_and_incrbyfloat(r):
    assert r.incr("n") == 1
    assert r.incr("n", 41) == 42
    assert r.decr("n", 2) == 40
    assert r.incrbyfloat("f", 1.5) == 1.5
    assert r.incrbyfloat("f", 0.1) == pytest.approx(1.6)
    assert r.get("f") == "1.6"
    assert r.incrbyfloat("f", -1.6) == 0
    r.set("big", "1e3")
    assert r.incrbyfloat("big", 1) == 1001
    r.set("text", "abc")
    with pytest.raises(redis.ResponseError, match="not an integer"):
        r.incr("text")
    with pytest.raises(redis.ResponseError, match="not a valid float"):
        r.incrbyfloat("text", 1)
    r.set("max", str(2**63 - 1))
    with pytest.raises(redis.ResponseError, match="overflow"):
        r.incr("max")
    assert not math.isnan(r.incrbyfloat("g", 3.0))


def test_expire_and_ttl(r):
    r.set("e", "1")
    assert r.ttl("e") == -1
    assert r.ttl("missing") == -2
    assert r.expire("e", 100) is True
    assert 90 <= r.ttl("e") <= 100
    assert r.pexpire("e", 5000) is True
    assert 0 < r.pttl("e") <= 5000
    assert r.expire("e", 100, nx=True) is False
    assert r.expire("e", 200, gt=True) is True
    assert r.persist("e") is True
    assert r.ttl("e") == -1
    assert r.expire("missing", 10) is False
    assert r.expire("e", -1) is True
    assert r.exists("e") == 0


def test_scan_iter_sees_every_key(r):
    expected = {f"scan:{i}" for i in range(1000)}
    r.mset({k: "1" for k in expected})
    r.mset({f"other:{i}": "1" for i in range(50)})
    assert set(r.scan_iter(match="scan:*", count=100)) == expected
    assert len(set(r.scan_iter(count=7))) == 1050
    assert set(r.scan_iter(match="nothing:*")) == set()
    assert len(list(r.scan_iter(_type="string", count=500))) >= 1050


def test_client_setname_and_list(r):
    assert r.client_setname("py-smoke") is True
    assert r.client_getname() == "py-smoke"
    my_id = r.client_id()
    clients = r.client_list()
    mine = [c for c in clients if c["name"] == "py-smoke"]
    assert len(mine) == 1
    entry = mine[0]
    assert entry["id"] == str(my_id)
    for field in ("addr", "laddr", "fd", "age", "idle", "flags", "db", "cmd", "resp", "lib-name", "lib-ver"):
        assert field in entry, field
    assert entry["cmd"] == "client|list"
    assert entry["lib-name"] == "redis-py"
    assert entry["lib-ver"] == redis.__version__
    assert any(c["id"] == str(my_id) for c in r.client_list(client_id=[my_id]))


def test_info_parses(r):
    info = r.info()
    assert str(info["redis_version"]).startswith("7.2.")
    assert info["arch_bits"] == 64
    assert info["cluster_enabled"] == 0
    assert info["connected_clients"] >= 1
    assert isinstance(info["used_memory"], int)
    server = r.info("server")
    assert server["tcp_port"] == r.get_connection_kwargs()["port"]
    assert "used_memory" not in server
    r.set("a", 1)
    keyspace = r.info("keyspace")
    assert keyspace["db0"]["keys"] == 1


def test_config_get(r):
    assert r.config_get("maxmemory") == {"maxmemory": "0"}
    policies = r.config_get("maxmemory-*")
    assert policies["maxmemory-policy"] == "noeviction"
    assert r.config_set("maxmemory", "10mb") is True
    try:
        assert r.config_get("maxmemory") == {"maxmemory": "10485760"}
    finally:
        r.config_set("maxmemory", "0")
    assert r.config_get("no-such-parameter") == {}


def test_unknown_command_raises_response_error(r):
    with pytest.raises(redis.ResponseError, match="unknown command 'DPING'"):
        r.execute_command("DPING")
    with pytest.raises(redis.ResponseError, match="wrong number of arguments"):
        r.execute_command("GET")
    assert r.ping() is True


def test_collections(r):
    assert r.rpush("l", "a", "b", "c") == 3
    assert r.lrange("l", 0, -1) == ["a", "b", "c"]
    assert tuple(r.blpop(["nothing", "l"], timeout=1)) == ("l", "a")
    assert r.hset("h", mapping={"f1": "1", "f2": "2"}) == 2
    assert r.hgetall("h") == {"f1": "1", "f2": "2"}
    assert r.hincrbyfloat("h", "f1", 0.5) == 1.5
    assert r.sadd("s", "x", "y") == 2
    assert r.smembers("s") == {"x", "y"}
    assert r.smismember("s", ["x", "z"]) == [True, False]


def pairs(reply):
    """WITHSCORES replies as (member, score) tuples (RESP3 gives lists, RESP2 tuples)."""
    return [tuple(p) for p in reply]


def test_sorted_sets(r):
    assert r.zadd("z", {"a": 1, "b": 2.5, "c": 3}) == 3
    assert r.zadd("z", {"a": 5}, gt=True, ch=True) == 1
    assert pairs(r.zrange("z", 0, -1, withscores=True)) == [("b", 2.5), ("c", 3.0), ("a", 5.0)]
    assert r.zrange("z", "(2.5", "+inf", byscore=True) == ["c", "a"]
    assert pairs(r.zrevrangebyscore("z", 10, 0, start=0, num=2, withscores=True)) == [("a", 5.0), ("c", 3.0)]
    assert r.zincrby("z", 0.25, "b") == 2.75
    assert r.zscore("z", "b") == 2.75
    assert r.zmscore("z", ["b", "nope"]) == [2.75, None]
    assert r.zrank("z", "c") == 1
    assert r.zrank("z", "c", withscore=True) == [1, 3.0]
    assert r.zcard("z") == 3
    assert r.zcount("z", 2, 4) == 2
    assert r.zunionstore("u", {"z": 2, "other": 1}, aggregate="MAX") == 3
    assert pairs(r.zrange("u", 0, 0, withscores=True)) == [("b", 5.5)]
    assert dict(r.zscan_iter("z")) == {"a": 5.0, "b": 2.75, "c": 3.0}
    assert pairs(r.zpopmin("z", 1)) == [("b", 2.75)]
    assert tuple(r.bzpopmax(["none", "z"], timeout=1)) == ("z", "a", 5.0)
    key, items = r.zmpop(1, ["z"], min=True, count=5)
    assert key == "z" and [(m, float(s)) for m, s in items] == [("c", 3.0)]
    if r.get_connection_kwargs()["protocol"] == 3:
        assert isinstance(items[0][1], float), "RESP3 scores are doubles"
    assert r.exists("z") == 0
    big = {f"m{i}": i for i in range(300)}
    assert r.zadd("big", big) == 300
    assert r.object("encoding", "big") == "skiplist"
    assert r.zrange("big", 100, 102) == ["m100", "m101", "m102"]
    assert r.zremrangebyscore("big", 0, 149) == 150
    assert r.zrandmember("big", 3) is not None
