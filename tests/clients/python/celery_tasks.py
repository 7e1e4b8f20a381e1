"""Celery tasks for test_celery.py.

`create_app(url)` builds a Celery app with the Redis broker and the Redis
result backend at `url`. The worker processes import this module with
`celery -A celery_tasks worker`, which uses the module-level `app`, configured
from $CELERY_TASKS_REDIS_URL; the tests build their own app for the server
under test with `create_app`. Tasks that count their attempts do so in that
same server, so the test can check how often Celery ran them.
"""

import os

import redis
from celery import Celery

URL_VARIABLE = "CELERY_TASKS_REDIS_URL"


def create_app(url: str) -> Celery:
    app = Celery("celery_tasks", broker=url, backend=url, set_as_current=False)
    app.conf.update(
        task_serializer="json",
        result_serializer="json",
        accept_content=["json"],
        result_expires=3600,
        broker_connection_retry_on_startup=True,
        worker_hijack_root_logger=False,
        worker_redirect_stdouts=False,
        # A worker takes a few messages at a time, so 1,000 queued tasks show
        # up in the broker as a real backlog rather than all in one worker.
        worker_prefetch_multiplier=4,
        task_acks_late=False,
    )
    counters = {}

    def counter_client():
        """The task's own client for the server, made once per process."""
        client = counters.get("client")
        if client is None:
            client = counters["client"] = redis.Redis.from_url(url)
        return client

    @app.task(shared=False, name="celery_tasks.add")
    def add(x, y):
        return x + y

    @app.task(shared=False, name="celery_tasks.mul")
    def mul(x, y):
        return x * y

    @app.task(shared=False, name="celery_tasks.tsum")
    def tsum(numbers):
        return sum(numbers)

    @app.task(shared=False, name="celery_tasks.fail")
    def fail(message):
        raise ValueError(message)

    @app.task(bind=True, shared=False, name="celery_tasks.flaky", max_retries=3, default_retry_delay=0.2)
    def flaky(self, counter_key, failures):
        """Fails (and retries) the first `failures` attempts, then returns the attempt number."""
        attempt = counter_client().incr(counter_key)
        if attempt <= failures:
            raise self.retry(exc=RuntimeError(f"attempt {attempt} of {counter_key} fails"))
        return attempt

    @app.task(
        shared=False,
        name="celery_tasks.auto_retried",
        autoretry_for=(KeyError,),
        retry_kwargs={"max_retries": 2, "countdown": 0.1},
    )
    def auto_retried(counter_key, failures):
        """Like flaky, through autoretry_for; raises KeyError while failing."""
        attempt = counter_client().incr(counter_key)
        if attempt <= failures:
            raise KeyError(f"attempt {attempt} of {counter_key}")
        return attempt

    return app


app = create_app(os.environ.get(URL_VARIABLE, "redis://127.0.0.1:6379/0"))
