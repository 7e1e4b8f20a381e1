"""Job queues survive `kill -9` with the append-only log on (`appendfsync always`):
RQ's queues, job hashes, results and registries are the same after the server
is killed and started again on its files, and the queue keeps working.

Run against a real redis-server with the same settings as well as Redoubt: the
redis-server run shows the test itself is right.
"""

import contextlib
import subprocess
from datetime import timedelta

import pytest
import redis
from rq import Queue, SimpleWorker
from rq.job import Job
from rq.registry import FailedJobRegistry, FinishedJobRegistry, ScheduledJobRegistry

import rq_jobs
from conftest import free_port, server_command, stop_process, wait_ready


class Node:
    """One server on a fixed data directory that can be killed and started again."""

    def __init__(self, kind, workdir):
        self.kind, self.workdir = kind, workdir
        self.proc, self.port = None, None

    def start(self):
        args = ["--dir", str(self.workdir), "--appendonly", "yes", "--appendfsync", "always", "--save", ""]
        for _ in range(5):
            self.port = free_port()
            log = open(self.workdir / f"{self.kind}.log", "ab")
            self.proc = subprocess.Popen(
                server_command(self.kind, self.port, str(self.workdir)) + args,
                cwd=self.workdir,
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
            )
            log.close()
            if wait_ready(self.proc, self.port, self.kind):
                return
            self.proc.wait()
        raise RuntimeError(f"{self.kind} did not start: {(self.workdir / f'{self.kind}.log').read_text()}")

    def kill9(self):
        self.proc.kill()
        self.proc.wait()

    def client(self):
        return redis.Redis(host="127.0.0.1", port=self.port, socket_timeout=10)


@contextlib.contextmanager
def node(kind, workdir):
    n = Node(kind, workdir)
    n.start()
    try:
        yield n
    finally:
        if n.proc.poll() is None:
            stop_process(n.proc)


def queue_state(conn, queue, job_ids):
    """What RQ sees: every job's status, result and error, the queue and registries."""
    jobs = {}
    for job_id in job_ids:
        job = Job.fetch(job_id, connection=conn)
        jobs[job_id] = (job.get_status(), job.return_value(), (job.exc_info or "")[:40])
    return {
        "jobs": jobs,
        "queued": queue.get_job_ids(),
        "finished": sorted(FinishedJobRegistry(queue=queue).get_job_ids()),
        "failed": sorted(FailedJobRegistry(queue=queue).get_job_ids()),
        "scheduled": sorted(ScheduledJobRegistry(queue=queue).get_job_ids()),
    }


@pytest.mark.parametrize("kind", ["redis", "redoubt"])
def test_rq_queues_survive_kill_9_with_appendfsync_always(kind, tmp_path):
    with node(kind, tmp_path) as n:
        conn = n.client()
        q = Queue("jobs", connection=conn)
        ids = [q.enqueue(rq_jobs.add, i, i).id for i in range(40)]
        ids += [q.enqueue(rq_jobs.fail, f"boom {i}").id for i in range(5)]
        SimpleWorker([q], connection=conn).work(burst=True)
        waiting = [q.enqueue(rq_jobs.add, i, 1000).id for i in range(20)]
        ids += waiting
        ids.append(q.enqueue_in(timedelta(hours=1), rq_jobs.add, 1, 2).id)
        before = queue_state(conn, q, ids)
        assert len(before["finished"]) == 40 and len(before["failed"]) == 5
        assert before["queued"] == waiting and len(before["scheduled"]) == 1
        conn.close()
        n.kill9()  # nothing is flushed at exit: only what the log made durable survives
        n.start()
        conn = n.client()
        q = Queue("jobs", connection=conn)
        assert queue_state(conn, q, ids) == before
        # The queue keeps working on the restored data.
        SimpleWorker([q], connection=conn).work(burst=True)
        results = [Job.fetch(i, connection=conn).return_value() for i in waiting]
        assert results == [i + 1000 for i in range(20)]
        conn.close()
