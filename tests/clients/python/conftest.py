"""Fixtures for the client tests: the Redoubt server (and, for the job-queue
suites, a real redis-server to compare with).

The server binary is $REDOUBT_BIN, or target/debug/redoubt-server at the root
of the workspace (build it with `cargo build -p redoubt-server`). Every server
listens on a free loopback port and is stopped when its fixture ends. Missing
pieces (the binary, redis-py, or redis-server for the comparison runs) stop the
run with a message naming what is missing.

`server_port` is one Redoubt server for the whole session (the redis-py suite).
`queue_server` is parametrized over redis-server and Redoubt, one fresh server
per test module and kind, for the RQ and Celery suites: the redis-server run
shows the tests themselves are right, the Redoubt run is the one that matters.
"""

import contextlib
import os
import shutil
import socket
import subprocess
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import pytest

try:
    import redis
except ImportError as exc:  # pragma: no cover - only when the venv is incomplete
    raise pytest.UsageError(
        "redis-py is missing (pip package `redis`): run "
        "`pip install -r tests/clients/python/requirements.txt` "
        f"({exc})"
    )

if not redis.__version__.startswith("8."):
    raise pytest.UsageError(
        f"redis-py 8.x is required, found {redis.__version__}: "
        "run `pip install -r tests/clients/python/requirements.txt`"
    )

WORKSPACE = Path(__file__).resolve().parents[3]
START_TIMEOUT = 10.0


def server_binary() -> Path:
    """The Redoubt binary to test; fails the session if it does not exist."""
    configured = os.environ.get("REDOUBT_BIN")
    binary = Path(configured) if configured else WORKSPACE / "target" / "debug" / "redoubt-server"
    if not binary.is_file():
        raise pytest.UsageError(
            f"redoubt-server binary is missing: {binary} does not exist "
            "(run `cargo build -p redoubt-server` or set REDOUBT_BIN)"
        )
    return binary


def pytest_configure(config):
    """Fail the whole run at once, naming what is missing, before any test."""
    server_binary()


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_ready(proc: subprocess.Popen, port: int, name: str) -> bool:
    """Polls PING until the server answers; False if the process exits first."""
    deadline = time.monotonic() + START_TIMEOUT
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            return False
        try:
            with redis.Redis(host="127.0.0.1", port=port, socket_timeout=1) as probe:
                if probe.ping():
                    return True
        except redis.exceptions.AuthenticationError:
            return True  # it answered, asking for the password it was started with
        except redis.exceptions.ConnectionError:
            pass
        time.sleep(0.02)
    raise RuntimeError(f"{name} did not answer PING on port {port} within {START_TIMEOUT}s")


def stop_process(proc: subprocess.Popen, timeout: float = 10.0) -> None:
    """SIGTERM, then SIGKILL if it has not exited within `timeout` seconds."""
    if proc.poll() is None:
        proc.terminate()
    try:
        proc.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()


def server_command(kind: str, port: int, workdir: str, extra: tuple = ()) -> list:
    """The command line of a `kind` server ("redoubt" or "redis") on `port`,
    with `extra` arguments (Redoubt only)."""
    if kind == "redoubt":
        return [str(server_binary()), "--port", str(port), "--bind", "127.0.0.1", "--admin-port", "0", *extra]
    if kind == "redis":
        binary = shutil.which("redis-server")
        if binary is None:
            pytest.fail(
                "redis-server is missing from PATH (Debian: apt-get install redis-server); "
                "the job-queue suites run against it to check the tests themselves",
                pytrace=False,
            )
        return [
            binary, "--port", str(port), "--bind", "127.0.0.1", "--dir", workdir,
            "--save", "", "--appendonly", "no", "--daemonize", "no",
        ]
    raise ValueError(f"unknown server kind {kind!r}")


@contextlib.contextmanager
def running_server(kind: str = "redoubt", extra: tuple = ()):
    """Starts a `kind` server on a free loopback port (with `extra` arguments for
    Redoubt); yields the port, then stops it."""
    name = "redoubt-server" if kind == "redoubt" else "redis-server"
    workdir = tempfile.mkdtemp(prefix=f"{name}-pytest-")
    log_path = Path(workdir) / "server.log"
    try:
        for _ in range(5):
            port = free_port()
            with open(log_path, "wb") as log:
                proc = subprocess.Popen(
                    server_command(kind, port, workdir, extra),
                    cwd=workdir,
                    stdin=subprocess.DEVNULL,
                    stdout=log,
                    stderr=subprocess.STDOUT,
                )
            try:
                if wait_ready(proc, port, name):
                    break
            except BaseException:
                proc.kill()
                proc.wait()
                raise
            proc.wait()
        else:
            raise RuntimeError(f"{name} failed to start:\n{log_path.read_text(errors='replace')}")
        try:
            yield port
        finally:
            stop_process(proc)
    finally:
        shutil.rmtree(workdir, ignore_errors=True)


@pytest.fixture(scope="session")
def server_port():
    """Starts redoubt-server on a free loopback port for the whole session."""
    with running_server("redoubt") as port:
        yield port


@dataclass(frozen=True)
class QueueServer:
    kind: str  # "redoubt" or "redis"
    port: int

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def client(self, **kwargs) -> redis.Redis:
        return redis.Redis(host="127.0.0.1", port=self.port, socket_timeout=10, **kwargs)


@pytest.fixture(scope="module", params=["redis", "redoubt"])
def queue_server(request):
    """A fresh server of each kind for a job-queue test module: redis-server
    first (so a run stopped at the first failure has already checked the test
    itself), then Redoubt."""
    with running_server(request.param) as port:
        yield QueueServer(request.param, port)


@pytest.fixture(params=[3, 2], ids=["resp3", "resp2"])
def r(request, server_port):
    """A redis-py client (RESP3 first, then RESP2) on an empty keyspace."""
    client = redis.Redis(
        host="127.0.0.1",
        port=server_port,
        protocol=request.param,
        decode_responses=True,
        socket_timeout=5,
    )
    client.flushall()
    yield client
    client.close()
