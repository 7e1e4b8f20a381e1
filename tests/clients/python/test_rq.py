"""End-to-end: RQ (the `rq` package) with real `rq worker` processes.

Every test runs against a real redis-server and against Redoubt (the
`queue_server` fixture): the redis-server run shows the test itself is right,
the Redoubt run is the one that matters. The jobs live in rq_jobs.py, which the
worker processes import. Workers are the `rq worker` command started as
subprocesses (the default, forking Worker class, except for the 1,000-job run,
which uses SimpleWorker so that it does not spend its time forking); a burst worker is waited for
until it exits, a long-running one (with the scheduler) is polled with a
deadline and stopped with SIGTERM (RQ's warm shutdown). Every worker process,
and anything it forked, is gone when its test ends, pass or fail.
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
from rq import Queue, Retry, Worker
from rq.job import Dependency, Job, JobStatus
from rq.registry import (
    DeferredJobRegistry,
    FailedJobRegistry,
    FinishedJobRegistry,
    ScheduledJobRegistry,
    StartedJobRegistry,
)
from rq.results import Result

import rq_jobs

HERE = Path(__file__).resolve().parent
BURST_DEADLINE = 120.0  # seconds a burst worker may take for its queue
POLL_DEADLINE = 20.0  # seconds to wait for scheduled jobs to run


@pytest.fixture
def conn(queue_server):
    """A redis-py client (bytes replies, as RQ wants) on an empty server."""
    client = queue_server.client()
    client.flushall()
    yield client
    client.close()


def _kill_group(pgid: int) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(pgid, signal.SIGKILL)


@contextlib.contextmanager
def rq_worker(queue_server, tmp_path, *args):
    """Runs `rq worker <args>` in its own process group; yields (process, log path).

    On the way out a still-running worker gets SIGTERM (warm shutdown) and 15
    seconds, then its whole process group (work horses, scheduler) is killed.
    """
    log_path = tmp_path / f"rq-worker-{time.monotonic_ns()}.log"
    command = [
        sys.executable, "-m", "rq.cli", "worker",
        "--url", queue_server.url,
        "--path", str(HERE),
        "--logging_level", "INFO",
        *args,
    ]
    with open(log_path, "wb") as log:
        proc = subprocess.Popen(
            command,
            cwd=tmp_path,
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    try:
        yield proc, log_path
    finally:
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                pass
        _kill_group(proc.pid)
        proc.wait()


def log_tail(log_path: Path, chars: int = 4000) -> str:
    text = log_path.read_text(errors="replace")
    return text[-chars:]


def server_errors(log_text: str) -> str:
    """The distinct lines of a worker log where the server answered with an error
    (redis-py raises them as redis.exceptions.*); empty if there are none."""
    lines = [line.strip() for line in log_text.splitlines() if "redis.exceptions." in line]
    distinct = list(dict.fromkeys(line[:300] for line in lines))
    return "\n".join(distinct[:10])


def run_burst_worker(queue_server, tmp_path, *queues):
    """Runs `rq worker --burst` on `queues` until it exits; asserts it exited cleanly."""
    with rq_worker(queue_server, tmp_path, "--burst", *queues) as (proc, log_path):
        try:
            code = proc.wait(timeout=BURST_DEADLINE)
        except subprocess.TimeoutExpired:
            pytest.fail(
                f"rq worker --burst did not finish within {BURST_DEADLINE}s; log tail:\n"
                + log_tail(log_path)
            )
        assert code == 0, f"rq worker exited with {code}; log tail:\n{log_tail(log_path)}"
        return log_path.read_text(errors="replace")


def wait_until(predicate, deadline_s, what, log_path=None):
    """Polls `predicate` until it is true; fails naming `what` after `deadline_s`."""
    deadline = time.monotonic() + deadline_s
    while True:
        if predicate():
            return
        if time.monotonic() > deadline:
            detail = ""
            if log_path:
                errors = server_errors(log_path.read_text(errors="replace"))
                detail = f"; server errors in the worker log:\n{errors}\nworker log tail:\n{log_tail(log_path)}"
            pytest.fail(f"timed out after {deadline_s}s waiting for {what}{detail}")
        time.sleep(0.05)


def as_utc(moment: datetime) -> datetime:
    """RQ's timestamps are UTC; some are naive. Makes them comparable."""
    return moment if moment.tzinfo else moment.replace(tzinfo=timezone.utc)


def fetch_jobs(conn, job_ids):
    jobs = Job.fetch_many(job_ids, connection=conn)
    missing = [job_id for job_id, job in zip(job_ids, jobs) if job is None]
    assert not missing, f"jobs vanished: {missing[:10]}"
    return jobs


def test_thousand_jobs_with_failures_and_retries(queue_server, conn, tmp_path):
    """1,000 jobs through one worker: 850 succeed, 100 fail, 25 succeed on their
    third attempt (Retry(max=3)), 25 exhaust Retry(max=2) and fail."""
    q = Queue("bulk", connection=conn)
    plan = []  # (job_id, kind), in enqueue order
    data = []
    for i in range(1000):
        if i % 10 == 3:  # 100 jobs
            job_id, kind = f"fail-{i}", "fail"
            data.append(Queue.prepare_data(rq_jobs.fail, (f"boom {i}",), job_id=job_id))
        elif i % 40 == 7:  # 25 jobs
            job_id, kind = f"retry-ok-{i}", "retry-ok"
            data.append(
                Queue.prepare_data(
                    rq_jobs.flaky, (f"attempts:{job_id}", 2), job_id=job_id, retry=Retry(max=3)
                )
            )
        elif i % 40 == 17:  # 25 jobs
            job_id, kind = f"retry-out-{i}", "retry-out"
            data.append(
                Queue.prepare_data(
                    rq_jobs.flaky, (f"attempts:{job_id}", 99), job_id=job_id, retry=Retry(max=2)
                )
            )
        else:  # 850 jobs
            job_id, kind = f"add-{i}", "add"
            data.append(Queue.prepare_data(rq_jobs.add, (i, 1000), job_id=job_id))
        plan.append((job_id, kind))
    by_kind = {}
    for job_id, kind in plan:
        by_kind.setdefault(kind, []).append(job_id)
    assert {k: len(v) for k, v in by_kind.items()} == {
        "add": 850, "fail": 100, "retry-ok": 25, "retry-out": 25,
    }

    enqueued = q.enqueue_many(data)
    assert [job.id for job in enqueued] == [job_id for job_id, _ in plan]
    assert q.count == 1000
    assert q.job_ids == [job_id for job_id, _ in plan]
    assert all(job.get_status() == JobStatus.QUEUED for job in enqueued[:20])

    # SimpleWorker runs jobs in the worker process itself: the default Worker's
    # fork per job would spend most of this test forking, not talking to the server.
    log = run_burst_worker(queue_server, tmp_path, "--worker-class", "rq.worker.SimpleWorker", "bulk")

    finished = FinishedJobRegistry(queue=q)
    failed = FailedJobRegistry(queue=q)
    counts = {
        "queued": q.count,
        "started": StartedJobRegistry(queue=q).count,
        "deferred": DeferredJobRegistry(queue=q).count,
        "scheduled": ScheduledJobRegistry(queue=q).count,
        "finished": finished.count,
        "failed": failed.count,
    }
    assert counts == {
        "queued": 0, "started": 0, "deferred": 0, "scheduled": 0, "finished": 875, "failed": 125,
    }, f"server errors in the worker log:\n{server_errors(log)}"
    assert set(finished.get_job_ids()) == set(by_kind["add"]) | set(by_kind["retry-ok"])
    assert set(failed.get_job_ids()) == set(by_kind["fail"]) | set(by_kind["retry-out"])

    adds = fetch_jobs(conn, by_kind["add"])
    for job in adds:
        i = int(job.id.split("-")[1])
        assert job.get_status() == JobStatus.FINISHED, job.id
        assert job.return_value() == i + 1000, job.id
        assert job.ended_at is not None and job.started_at <= job.ended_at
    sample = adds[0]
    assert [r.type for r in sample.results()] == [Result.Type.SUCCESSFUL]
    assert sample.latest_result().return_value == int(sample.id.split("-")[1]) + 1000

    for job in fetch_jobs(conn, by_kind["fail"]):
        i = int(job.id.split("-")[1])
        assert job.get_status() == JobStatus.FAILED, job.id
        assert job.return_value() is None
        result = job.latest_result()
        assert result.type == Result.Type.FAILED, job.id
        assert f"ValueError: boom {i}" in result.exc_string, result.exc_string

    attempts = conn.mget([f"attempts:{job_id}" for job_id in by_kind["retry-ok"]])
    assert attempts == [b"3"] * 25
    for job in fetch_jobs(conn, by_kind["retry-ok"]):
        assert job.get_status() == JobStatus.FINISHED, job.id
        assert job.return_value() == 3
        assert job.retries_left == 1, job.id
        # Failed attempts that were retried leave no result: only the last one does.
        assert [r.type for r in job.results()] == [Result.Type.SUCCESSFUL], job.id

    attempts = conn.mget([f"attempts:{job_id}" for job_id in by_kind["retry-out"]])
    assert attempts == [b"3"] * 25
    for job in fetch_jobs(conn, by_kind["retry-out"]):
        assert job.get_status() == JobStatus.FAILED, job.id
        assert job.retries_left == 0, job.id
        assert [r.type for r in job.results()] == [Result.Type.FAILED], job.id
        result = job.latest_result()
        assert f"RuntimeError: attempt 3 of attempts:{job.id} fails" in result.exc_string


def test_job_dependencies(queue_server, conn, tmp_path):
    """depends_on with one job, several jobs, a chain, a failed dependency that
    blocks its dependent, and Dependency(allow_failure=True) that does not."""
    q = Queue("deps", connection=conn)
    a = q.enqueue(rq_jobs.add, 1, 2, job_id="a")
    b = q.enqueue(rq_jobs.add, 3, 4, job_id="b")
    c = q.enqueue(rq_jobs.sum_of_dependencies, depends_on=[a, b], job_id="c")
    d = q.enqueue(rq_jobs.sum_of_dependencies, depends_on=c, job_id="d")
    f = q.enqueue(rq_jobs.fail, "dependency fails", job_id="f")
    blocked = q.enqueue(rq_jobs.record, "ran", "blocked", depends_on=f, job_id="blocked")
    tolerant = q.enqueue(
        rq_jobs.record, "ran", "tolerant",
        depends_on=Dependency(jobs=[f], allow_failure=True), job_id="tolerant",
    )

    assert q.job_ids == ["a", "b", "f"]
    deferred = DeferredJobRegistry(queue=q)
    assert sorted(deferred.get_job_ids()) == ["blocked", "c", "d", "tolerant"]
    for job in (c, d, blocked, tolerant):
        assert job.get_status() == JobStatus.DEFERRED, job.id
    assert sorted(a.dependent_ids) == ["c"]
    assert sorted(f.dependent_ids) == ["blocked", "tolerant"]

    log = run_burst_worker(queue_server, tmp_path, "deps")

    a, b, c, d, f, blocked, tolerant = Job.fetch_many(
        ["a", "b", "c", "d", "f", "blocked", "tolerant"], connection=conn
    )
    assert [job.get_status() for job in (a, b, c, d, tolerant)] == [JobStatus.FINISHED] * 5, (
        f"server errors in the worker log:\n{server_errors(log)}"
    )
    assert [a.return_value(), b.return_value(), c.return_value(), d.return_value()] == [3, 7, 10, 10]
    assert tolerant.return_value() == "tolerant"
    assert f.get_status() == JobStatus.FAILED
    assert blocked.get_status() == JobStatus.DEFERRED
    assert deferred.get_job_ids() == ["blocked"]
    assert conn.lrange("ran", 0, -1) == [b"tolerant"]
    assert q.count == 0
    assert FinishedJobRegistry(queue=q).count == 5
    assert FailedJobRegistry(queue=q).get_job_ids() == ["f"]
    # Dependents started only after what they depend on had ended.
    assert c.started_at >= max(a.ended_at, b.ended_at)
    assert d.started_at >= c.ended_at
    assert tolerant.started_at >= f.ended_at


def test_scheduled_jobs_and_retry_intervals(queue_server, conn, tmp_path):
    """enqueue_in / enqueue_at and Retry(interval=1) through a long-running
    worker with the scheduler, a result waited for with latest_result(timeout);
    the worker registers itself and stops on SIGTERM."""
    q = Queue("timed", connection=conn)
    before = datetime.now(timezone.utc)
    later_in = q.enqueue_in(timedelta(seconds=1), rq_jobs.record, "timed", "in", job_id="in")
    at_time = before + timedelta(seconds=2)
    later_at = q.enqueue_at(at_time, rq_jobs.record, "timed", "at", job_id="at")
    retried = q.enqueue(
        rq_jobs.flaky, "attempts:interval", 1, retry=Retry(max=2, interval=1), job_id="interval"
    )

    scheduled = ScheduledJobRegistry(queue=q)
    assert sorted(scheduled.get_job_ids()) == ["at", "in"]
    assert later_in.get_status() == JobStatus.SCHEDULED
    assert later_at.get_status() == JobStatus.SCHEDULED
    assert q.job_ids == ["interval"]

    with rq_worker(queue_server, tmp_path, "--with-scheduler", "--name", "timed-worker", "timed") as (
        proc,
        log_path,
    ):

        def done():
            assert proc.poll() is None, f"worker exited early; log tail:\n{log_tail(log_path)}"
            jobs = Job.fetch_many(["in", "at", "interval"], connection=conn)
            return all(job.get_status() == JobStatus.FINISHED for job in jobs)

        wait_until(done, POLL_DEADLINE, "the scheduled jobs to finish", log_path)

        # A job enqueued now, waited for by blocking on its result.
        waited = q.enqueue(rq_jobs.add, 20, 22, job_id="waited")
        result = waited.latest_result(timeout=10)
        assert result is not None, f"no result within 10s; log tail:\n{log_tail(log_path)}"
        assert result.type == Result.Type.SUCCESSFUL
        assert result.return_value == 42

        workers = Worker.all(connection=conn)
        assert [w.name for w in workers] == ["timed-worker"]
        assert workers[0].queue_names() == ["timed"]
        assert workers[0].successful_job_count == 4
        assert workers[0].failed_job_count == 1  # the first attempt of "interval"

        proc.send_signal(signal.SIGTERM)
        try:
            code = proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            pytest.fail(f"worker ignored SIGTERM; log tail:\n{log_tail(log_path)}")
        assert code == 0, f"worker exited with {code}; log tail:\n{log_tail(log_path)}"

    assert Worker.all(connection=conn) == []
    later_in, later_at, retried = Job.fetch_many(["in", "at", "interval"], connection=conn)
    # RQ schedules to the whole second (the registry's score is an integer
    # timestamp), so a job may start up to a second before the exact time asked.
    assert as_utc(later_in.started_at) >= (before + timedelta(seconds=1)).replace(microsecond=0)
    assert as_utc(later_at.started_at) >= at_time.replace(microsecond=0)
    assert sorted(conn.lrange("timed", 0, -1)) == [b"at", b"in"]
    assert conn.get("attempts:interval") == b"2"
    assert retried.return_value() == 2
    assert retried.retries_left == 1
    assert [r.type for r in retried.results()] == [Result.Type.SUCCESSFUL]
    assert scheduled.count == 0
    assert FinishedJobRegistry(queue=q).count == 4
    assert FailedJobRegistry(queue=q).count == 0
