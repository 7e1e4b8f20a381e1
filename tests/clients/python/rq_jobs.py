"""Job functions for test_rq.py, imported by the RQ worker processes.

Jobs that count their attempts do so in the server they run against (through
the job's own connection), so the test can check exactly how often RQ ran them.
"""

from rq import get_current_job


def add(a, b):
    return a + b


def fail(message):
    raise ValueError(message)


def flaky(counter_key, failures):
    """Fails the first `failures` attempts, then returns the attempt number."""
    attempt = get_current_job().connection.incr(counter_key)
    if attempt <= failures:
        raise RuntimeError(f"attempt {attempt} of {counter_key} fails")
    return attempt


def record(list_key, value):
    """Appends `value` to a list, so the test sees the order jobs ran in."""
    get_current_job().connection.rpush(list_key, value)
    return value


def sum_of_dependencies():
    """The sum of the return values of every job this one depends on."""
    job = get_current_job()
    return sum(dependency.return_value() for dependency in job.fetch_dependencies())
