"""End-to-end: Celery with the Redis broker and the Redis result backend.

Every test runs against a real redis-server and against Redoubt (the
`queue_server` fixture): the redis-server run shows the test itself is right,
the Redoubt run is the one that matters. One real worker per server
(`celery -A celery_tasks worker`, prefork pool with two children) runs the
tasks of celery_tasks.py; the tests send tasks from this process with an app of
their own and read results through the result backend (pub/sub for .get(),
MGET polling for join_native, Lua scripts for chords). The worker is stopped
(SIGTERM, then SIGKILL of its process group) when the module's server goes,
pass or fail.
"""

import contextlib
import os
import signal
import subprocess
import sys
import time
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest
from celery import chain, chord, group
from celery.exceptions import ChordError, TaskRevokedError
from celery.result import GroupResult, ResultSet

import celery_tasks

# Celery's own Redis backend calls redis-py's deprecated setex().
pytestmark = pytest.mark.filterwarnings("ignore:Call to deprecated setex:DeprecationWarning")

HERE = Path(__file__).resolve().parent
WORKER_START_DEADLINE = 60.0
RESULT_TIMEOUT = 120.0  # seconds a batch of results may take


def log_tail(log_path: Path, chars: int = 4000) -> str:
    return log_path.read_text(errors="replace")[-chars:]


@pytest.fixture(scope="module")
def celery_worker(queue_server, tmp_path_factory):
    """A Celery app for the server under test and a real worker process for it.

    Yields (app, worker node name, worker log path).
    """
    with queue_server.client() as client:
        client.flushall()
    app = celery_tasks.create_app(queue_server.url)
    workdir = tmp_path_factory.mktemp(f"celery-{queue_server.kind}")
    log_path = workdir / "worker.log"
    node = f"redoubt-test-{queue_server.kind}@localhost"
    env = dict(os.environ)
    env[celery_tasks.URL_VARIABLE] = queue_server.url
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(HERE), env.get("PYTHONPATH")]))
    command = [
        sys.executable, "-m", "celery", "-A", "celery_tasks", "worker",
        "--pool", "prefork", "--concurrency", "2",
        "--hostname", node, "--loglevel", "INFO",
    ]
    with open(log_path, "wb") as log:
        proc = subprocess.Popen(
            command,
            cwd=workdir,
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    try:
        # Ready when it has run a task end to end.
        deadline = time.monotonic() + WORKER_START_DEADLINE
        probe = app.tasks["celery_tasks.add"].delay(20, 22)
        while True:
            if proc.poll() is not None:
                pytest.fail(f"celery worker exited with {proc.returncode}:\n{log_tail(log_path)}")
            if probe.ready():
                break
            if time.monotonic() > deadline:
                pytest.fail(
                    f"celery worker ran no task within {WORKER_START_DEADLINE}s; log tail:\n"
                    + log_tail(log_path)
                )
            time.sleep(0.05)
        assert probe.get(timeout=5) == 42
        yield app, node, log_path
    finally:
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)  # warm shutdown
            try:
                proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                pass
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(proc.pid, signal.SIGKILL)  # the pool's children too
        proc.wait()
        app.close()


@pytest.fixture
def conn(queue_server):
    client = queue_server.client()
    yield client
    client.close()


def wait_until(predicate, deadline_s, what, log_path):
    deadline = time.monotonic() + deadline_s
    while not predicate():
        if time.monotonic() > deadline:
            pytest.fail(f"timed out after {deadline_s}s waiting for {what}; worker log tail:\n{log_tail(log_path)}")
        time.sleep(0.05)


def test_thousand_tasks_with_results(celery_worker, conn):
    """1,000 tasks (950 succeed, 50 raise) sent at once to one worker; every
    result comes back through the result backend."""
    app, _, log_path = celery_worker
    add, fail = app.tasks["celery_tasks.add"], app.tasks["celery_tasks.fail"]
    results = []
    for i in range(1000):
        if i % 20 == 11:
            results.append(fail.delay(f"boom {i}"))
        else:
            results.append(add.delay(i, i))
    assert len({r.id for r in results}) == 1000

    values = ResultSet(results, app=app).join(timeout=RESULT_TIMEOUT, propagate=False)
    for i, (result, value) in enumerate(zip(results, values)):
        if i % 20 == 11:
            assert isinstance(value, ValueError) and str(value) == f"boom {i}", (i, value)
            assert result.state == "FAILURE"
            assert f"ValueError: boom {i}" in result.traceback
        else:
            assert value == 2 * i, (i, value)
            assert result.state == "SUCCESS"
    assert sum(r.successful() for r in results) == 950
    assert sum(r.failed() for r in results) == 50

    # The same results again, read in bulk (MGET polling) by a fresh ResultSet.
    again = ResultSet([app.AsyncResult(r.id) for r in results], app=app)
    assert again.join_native(timeout=RESULT_TIMEOUT, propagate=False)[:3] == [0, 2, 4]
    assert again.completed_count() == 950

    # Every result is stored with result_expires as its TTL; the queue is drained.
    meta_keys = [f"celery-task-meta-{r.id}" for r in results]
    assert conn.exists(*meta_keys) == 1000
    assert 0 < conn.ttl(meta_keys[0]) <= 3600
    assert conn.llen("celery") == 0
    wait_until(lambda: conn.hlen("unacked") == 0, 10, "unacked messages to be acknowledged", log_path)
    assert conn.zcard("unacked_index") == 0


def test_group_chain_and_chord(celery_worker):
    app, _, _ = celery_worker
    add, mul, tsum, fail = (app.tasks[f"celery_tasks.{n}"] for n in ("add", "mul", "tsum", "fail"))

    squares = group(mul.s(i, i) for i in range(100)).apply_async()
    assert squares.get(timeout=RESULT_TIMEOUT) == [i * i for i in range(100)]
    assert squares.completed_count() == 100
    assert squares.successful()
    squares.save()
    restored = GroupResult.restore(squares.id, app=app)
    assert [r.id for r in restored.results] == [r.id for r in squares.results]
    assert restored.get(timeout=10) == [i * i for i in range(100)]
    restored.delete()
    assert GroupResult.restore(squares.id, app=app) is None

    pipeline = chain(add.s(2, 3), mul.s(10), add.s(1)).apply_async()
    assert pipeline.get(timeout=RESULT_TIMEOUT) == 51
    assert pipeline.parent.get(timeout=10) == 50

    total = chord((add.s(i, i) for i in range(50)), tsum.s()).apply_async()
    assert total.get(timeout=RESULT_TIMEOUT) == sum(2 * i for i in range(50))
    assert total.parent.get(timeout=10) == [2 * i for i in range(50)]

    broken = chord([add.s(1, 1), fail.s("in a chord"), add.s(2, 2)], tsum.s()).apply_async()
    # .get() re-raises the header task's own error; the callback itself fails
    # with a ChordError naming it.
    with pytest.raises(ValueError, match="in a chord"):
        broken.get(timeout=RESULT_TIMEOUT)
    value = broken.get(timeout=RESULT_TIMEOUT, propagate=False)
    assert isinstance(value, ChordError), value
    assert "ValueError('in a chord')" in str(value)
    assert broken.state == "FAILURE"


def test_retries(celery_worker, conn):
    """self.retry() and autoretry_for: until success, and until max_retries."""
    app, _, _ = celery_worker
    flaky, auto = app.tasks["celery_tasks.flaky"], app.tasks["celery_tasks.auto_retried"]

    recovers = flaky.delay("attempts:flaky-ok", 2)
    gives_up = flaky.delay("attempts:flaky-out", 99)
    auto_recovers = auto.delay("attempts:auto-ok", 1)
    auto_gives_up = auto.delay("attempts:auto-out", 99)

    assert recovers.get(timeout=RESULT_TIMEOUT) == 3
    assert recovers.state == "SUCCESS"
    value = gives_up.get(timeout=RESULT_TIMEOUT, propagate=False)
    assert isinstance(value, RuntimeError)
    assert str(value) == "attempt 4 of attempts:flaky-out fails"  # max_retries=3
    assert gives_up.state == "FAILURE"
    assert auto_recovers.get(timeout=RESULT_TIMEOUT) == 2
    value = auto_gives_up.get(timeout=RESULT_TIMEOUT, propagate=False)
    assert isinstance(value, KeyError)
    assert gives_up.state == "FAILURE"
    assert conn.mget(
        ["attempts:flaky-ok", "attempts:flaky-out", "attempts:auto-ok", "attempts:auto-out"]
    ) == [b"3", b"4", b"2", b"3"]


def test_countdown_and_expiry(celery_worker):
    """A task with a countdown runs no earlier than asked; one that expires
    before its ETA is revoked instead of run."""
    app, _, _ = celery_worker
    add = app.tasks["celery_tasks.add"]
    sent = datetime.now(timezone.utc)
    delayed = add.apply_async((5, 6), countdown=1)
    expired = add.apply_async((7, 8), countdown=2, expires=1)
    assert delayed.get(timeout=RESULT_TIMEOUT) == 11
    assert delayed.date_done >= sent + timedelta(seconds=1)
    with pytest.raises(TaskRevokedError):
        expired.get(timeout=RESULT_TIMEOUT)
    assert expired.state == "REVOKED"


def test_remote_control(celery_worker):
    """The broadcast (pidbox) channel: ping and inspect reach the worker."""
    app, node, _ = celery_worker
    assert app.control.ping(destination=[node], timeout=10, limit=1) == [{node: {"ok": "pong"}}]
    registered = app.control.inspect(destination=[node], timeout=10, limit=1).registered()
    assert "celery_tasks.flaky" in registered[node]
    stats = app.control.inspect(destination=[node], timeout=10, limit=1).stats()
    assert stats[node]["pool"]["max-concurrency"] == 2
