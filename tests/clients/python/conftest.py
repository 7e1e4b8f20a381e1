"""Fixtures for the redis-py smoke tests: start one Redoubt server for the session.

The server binary is $REDOUBT_BIN, or target/debug/redoubt-server at the root
of the workspace (build it with `cargo build -p redoubt-server`). It listens on
a free loopback port and is stopped when the session ends. Missing pieces (the
binary, or redis-py itself) stop the run with a message naming what is missing.
"""

import os
import shutil
import socket
import subprocess
import tempfile
import time
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


def wait_ready(proc: subprocess.Popen, port: int) -> bool:
    """Polls PING until the server answers; False if the process exits first."""
    deadline = time.monotonic() + START_TIMEOUT
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            return False
        try:
            with redis.Redis(host="127.0.0.1", port=port, socket_timeout=1) as probe:
                if probe.ping():
                    return True
        except redis.exceptions.ConnectionError:
            pass
        time.sleep(0.02)
    raise RuntimeError(f"redoubt-server did not answer PING on port {port} within {START_TIMEOUT}s")


@pytest.fixture(scope="session")
def server_port():
    """Starts redoubt-server on a free loopback port for the whole session."""
    binary = server_binary()
    workdir = tempfile.mkdtemp(prefix="redoubt-pytest-")
    log_path = Path(workdir) / "server.log"
    for _ in range(5):
        port = free_port()
        with open(log_path, "wb") as log:
            proc = subprocess.Popen(
                [str(binary), "--port", str(port), "--bind", "127.0.0.1"],
                cwd=workdir,
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
            )
        try:
            if wait_ready(proc, port):
                break
        except BaseException:
            proc.kill()
            proc.wait()
            raise
        proc.wait()
    else:
        raise RuntimeError(f"redoubt-server failed to start:\n{log_path.read_text(errors='replace')}")
    try:
        yield port
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        shutil.rmtree(workdir, ignore_errors=True)


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
